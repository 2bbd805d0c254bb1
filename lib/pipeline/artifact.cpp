// The pipeline artifact directory: manifest.json (format version, library version, creation
// time, training data hash, SHA-256 of every file) next to the parts. Format: docs/pipeline.md.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <optional>

#include "common/utc_time.hpp"
#include "common/atomic_file.hpp"
#include "common/json_int.hpp"
#include "common/sha256.hpp"
#include "common/text_io.hpp"
#include "pipeline/pipeline_impl.hpp"
#include "routenlp/error.hpp"
#include "routenlp/version.hpp"

namespace routenlp {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr size_t kMaxManifestBytes = size_t{1} << 20;
constexpr const char* kManifest = "manifest.json";

// Every regular file under dir (relative, '/'-separated, sorted); anything else is an error.
std::vector<std::string> files_under(const fs::path& dir) {
  std::vector<std::string> out;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator(); ++it) {
    if (it->is_directory() && !it->is_symlink()) continue;
    const std::string rel = fs::relative(it->path(), dir).generic_string();
    if (it->is_symlink() || !it->is_regular_file())
      throw Error(Status::parse, (dir / rel).string() + ": not a regular file (artifacts hold only files)");
    out.push_back(rel);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// A manifest path must stay inside the artifact.
bool safe_relative(const std::string& p) {
  if (p.empty() || p.front() == '/' || p.find('\\') != std::string::npos) return false;
  for (const auto& part : fs::path(p))
    if (part == ".." || part == "." || part.empty()) return false;
  return true;
}

std::string rule_json(const StrongShareRule& r) {
  return json{{"kind", "strong-share"}, {"weak", r.weak}, {"strong", r.strong},
              {"threshold", r.threshold}, {"strong_share", r.strong_share}}
      .dump(2);
}

StrongShareRule rule_from_json(const std::string& text, const std::string& where) {
  StrongShareRule r;
  try {
    json j = json::parse(text);
    if (!j.is_object() || j.value("kind", "") != "strong-share")
      throw Error(Status::parse, where + ": kind: expected \"strong-share\"");
    r.weak = detail::json_int<int>(j.at("weak"), where, "weak");
    r.strong = detail::json_int<int>(j.at("strong"), where, "strong");
    r.threshold = j.at("threshold").get<double>();
    r.strong_share = j.at("strong_share").get<double>();
  } catch (const json::exception& e) {
    throw Error(Status::parse, where + ": " + e.what());
  }
  if (!std::isfinite(r.threshold) || !std::isfinite(r.strong_share))
    throw Error(Status::parse, where + ": threshold and strong_share must be finite");
  return r;
}

PipelineManifest manifest_from_json(const std::string& text, const std::string& where) {
  PipelineManifest m;
  try {
    json j = json::parse(text);
    if (!j.is_object()) throw Error(Status::parse, where + ": expected a JSON object");
    if (!j.contains("format_version"))
      throw Error(Status::parse, where + ": format_version: required integer");
    m.format_version = detail::json_int<int>(j["format_version"], where, "format_version");
    if (m.format_version != kPipelineFormatVersion)
      throw Error(Status::parse, where + ": artifact format version " + std::to_string(m.format_version) +
                                     ", this library reads version " +
                                     std::to_string(kPipelineFormatVersion) + " (refit or convert it)");
    m.library_version = j.at("library_version").get<std::string>();
    m.created_utc = j.at("created_utc").get<std::string>();
    m.system = j.at("system").get<std::string>();
    m.description = j.value("description", "");
    m.training_data_hash = j.value("training_data_hash", "");
    m.router_kind = j.value("router_kind", "");
    const json& files = j.at("files");
    if (!files.is_object()) throw Error(Status::parse, where + ": files: expected an object");
    for (auto it = files.begin(); it != files.end(); ++it) {
      if (!safe_relative(it.key()) || it.key() == kManifest)
        throw Error(Status::parse, where + ": files: '" + it.key() + "' is not a path inside the artifact");
      std::string h = it.value().get<std::string>();
      if (h.size() != 64 || h.find_first_not_of("0123456789abcdef") != std::string::npos)
        throw Error(Status::parse, where + ": files." + it.key() + ": not a SHA-256 hex digest");
      m.files.emplace_back(it.key(), h);
    }
  } catch (const json::exception& e) {
    throw Error(Status::parse, where + ": " + e.what());
  }
  // The library major version is the artifact's ABI: another major may read parts differently.
  const int major = std::atoi(m.library_version.c_str());
  if (major != library_version().major)
    throw Error(Status::parse, where + ": written by routenlp " + m.library_version + ", this is " +
                                   library_version_string() + " (major versions differ; refit it)");
  return m;
}

}  // namespace

void Pipeline::save(const std::string& dir, bool overwrite) const {
  const Impl& I = *impl_;
  const fs::path dest = fs::path(dir).lexically_normal();
  if (dest.empty()) throw Error(Status::invalid_argument, "pipeline save: empty directory name");
  std::error_code ec;
  if (fs::exists(dest, ec) && !overwrite)
    throw Error(Status::io, dest.string() + ": exists (pass overwrite to replace it)");
  detail::write_dir_atomic(dest.string(), "pipeline save", [&](const fs::path& tmp) {
    detail::write_file_atomic((tmp / "portfolio.yaml").string(), portfolio_to_yaml(I.parts.portfolio));
    if (I.parts.router) save_router(*I.parts.router, (tmp / "router").string());
    if (I.parts.calibration)
      detail::write_file_atomic((tmp / "calibration.json").string(), I.parts.calibration->to_json());
    if (I.parts.acceptance)
      detail::write_file_atomic((tmp / "acceptance.json").string(), I.parts.acceptance->to_json());
    if (I.parts.strong_share)
      detail::write_file_atomic((tmp / "rule.json").string(), rule_json(*I.parts.strong_share));
    json files = json::object();
    for (const auto& rel : files_under(tmp)) files[rel] = detail::sha256_file_hex((tmp / rel).string());
    json m = {{"format_version", kPipelineFormatVersion},
              {"library_version", library_version_string()},
              {"created_utc", detail::utc_now_iso8601()},
              {"system", I.manifest.system},
              {"description", I.manifest.description},
              {"training_data_hash", I.manifest.training_data_hash},
              {"router_kind", I.manifest.router_kind},
              {"files", files}};
    detail::write_file_atomic((tmp / kManifest).string(), m.dump(2) + "\n");
  });
}

Pipeline Pipeline::load(const std::string& dir) { return load(dir, RouterRuntime{}); }

Pipeline Pipeline::load(const std::string& dir, const RouterRuntime& runtime) {
  const fs::path root = fs::path(dir);
  std::error_code ec;
  if (!fs::is_directory(root, ec))
    throw Error(Status::io, root.string() + ": not a pipeline artifact directory");
  const std::string mpath = (root / kManifest).string();
  if (!fs::exists(mpath, ec))
    throw Error(Status::parse, root.string() + ": no manifest.json (not a pipeline artifact, or truncated)");
  PipelineManifest m = manifest_from_json(detail::read_file(mpath, kMaxManifestBytes), mpath);

  // Integrity first: exactly the listed files, each with its hash.
  std::vector<std::string> listed;
  for (const auto& f : m.files) listed.push_back(f.first);
  std::sort(listed.begin(), listed.end());
  std::vector<std::string> present;
  try {
    present = files_under(root);
  } catch (const fs::filesystem_error& e) {
    throw Error(Status::io, root.string() + ": " + e.what());
  }
  present.erase(std::remove(present.begin(), present.end(), std::string(kManifest)), present.end());
  for (const auto& f : listed)
    if (!std::binary_search(present.begin(), present.end(), f))
      throw Error(Status::parse, (root / f).string() + ": listed in manifest.json but missing (truncated artifact?)");
  for (const auto& f : present)
    if (!std::binary_search(listed.begin(), listed.end(), f))
      throw Error(Status::parse, (root / f).string() + ": not listed in manifest.json (tampered artifact?)");
  for (const auto& f : m.files) {
    const std::string path = (root / f.first).string();
    if (detail::sha256_file_hex(path) != f.second)
      throw Error(Status::parse, path + ": SHA-256 differs from manifest.json (modified or truncated)");
  }
  auto has = [&](const std::string& f) { return std::binary_search(listed.begin(), listed.end(), f); };
  if (!has("portfolio.yaml")) throw Error(Status::parse, mpath + ": files: portfolio.yaml is required");

  PipelineParts parts;
  const std::string ppath = (root / "portfolio.yaml").string();
  parts.portfolio = parse_portfolio(detail::read_file(ppath), ppath);
  bool has_router = false;
  for (const auto& f : listed) has_router = has_router || f.rfind("router/", 0) == 0;
  if (has_router) parts.router = load_router((root / "router").string(), runtime);
  if (has("calibration.json")) {
    const std::string c = (root / "calibration.json").string();
    parts.calibration = std::make_shared<ConformalCalibrator>(
        ConformalCalibrator::from_json(detail::read_file(c), c));
  }
  if (has("acceptance.json")) {
    const std::string a = (root / "acceptance.json").string();
    parts.acceptance = std::make_shared<AcceptanceModel>(AcceptanceModel::from_json(detail::read_file(a), a));
  }
  if (has("rule.json")) {
    const std::string r = (root / "rule.json").string();
    parts.strong_share = rule_from_json(detail::read_file(r), r);
  }
  parts.system = m.system;
  parts.description = m.description;
  parts.training_data_hash = m.training_data_hash;
  std::optional<Pipeline> p;
  try {
    p.emplace(std::move(parts));
  } catch (const Error& e) {
    throw Error(Status::parse, root.string() + ": inconsistent artifact: " + e.what());
  }
  auto impl = std::make_shared<Impl>(*p->impl_);
  impl->manifest = std::move(m);
  return Pipeline(std::shared_ptr<const Impl>(std::move(impl)));
}

}  // namespace routenlp
