// Pooled libcurl POST client (see http_client.hpp).
#include "tiers/http_client.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <mutex>

#include "routenlp/error.hpp"

namespace routenlp::http {

namespace {

void global_init_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
      throw Error(Status::internal, "libcurl: curl_global_init failed");
  });
}

struct TransferState {
  const PostRequest* request = nullptr;
  std::string* body = nullptr;
  std::string* retry_after = nullptr;
  bool too_large = false;
  bool was_cancelled = false;
};

size_t on_write(char* data, size_t size, size_t nmemb, void* user) {
  auto* st = static_cast<TransferState*>(user);
  size_t n = size * nmemb;
  if (st->body->size() + n > st->request->max_response_bytes) {
    st->too_large = true;
    return 0;  // aborts the transfer with CURLE_WRITE_ERROR
  }
  st->body->append(data, n);
  return n;
}

size_t on_header(char* data, size_t size, size_t nmemb, void* user) {
  auto* st = static_cast<TransferState*>(user);
  size_t n = size * nmemb;
  std::string line(data, n);
  static const char kName[] = "retry-after:";
  if (line.size() > sizeof(kName) - 1) {
    bool match = true;
    for (size_t i = 0; i + 1 < sizeof(kName); ++i)
      if (std::tolower(static_cast<unsigned char>(line[i])) != kName[i]) match = false;
    if (match) {
      std::string v = line.substr(sizeof(kName) - 1);
      auto b = v.find_first_not_of(" \t");
      auto e = v.find_last_not_of(" \t\r\n");
      *st->retry_after = b == std::string::npos ? "" : v.substr(b, e - b + 1);
    }
  }
  return n;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* st = static_cast<TransferState*>(user);
  if (st->request->cancelled && st->request->cancelled()) {
    st->was_cancelled = true;
    return 1;  // CURLE_ABORTED_BY_CALLBACK
  }
  return 0;
}

}  // namespace

const char* outcome_name(Outcome o) {
  switch (o) {
    case Outcome::ok: return "ok";
    case Outcome::connect: return "connection failed";
    case Outcome::timeout: return "timed out";
    case Outcome::cancelled: return "cancelled";
    case Outcome::too_large: return "response too large";
    case Outcome::transport: return "transfer failed";
  }
  return "?";
}

CurlPool::CurlPool(size_t max_idle) : max_idle_(std::max<size_t>(1, max_idle)) {
  global_init_once();
}

CurlPool::~CurlPool() {
  for (void* h : idle_) curl_easy_cleanup(static_cast<CURL*>(h));
}

void* CurlPool::acquire() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      void* h = idle_.back();
      idle_.pop_back();
      return h;
    }
  }
  CURL* h = curl_easy_init();
  if (h == nullptr) throw Error(Status::no_memory, "libcurl: curl_easy_init failed");
  return h;
}

void CurlPool::release(void* handle) {
  auto* h = static_cast<CURL*>(handle);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (idle_.size() < max_idle_) {
      idle_.push_back(h);  // keeps its connection cache: the next call reuses the connection
      return;
    }
  }
  curl_easy_cleanup(h);
}

PostResult CurlPool::post(const PostRequest& request) {
  PostResult result;
  auto start = Clock::now();
  auto finish = [&](Outcome o, std::string err) {
    result.outcome = o;
    result.error = std::move(err);
    result.elapsed_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    return result;
  };

  long total_ms = 0;
  if (request.deadline != Clock::time_point::max()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(request.deadline - start);
    if (left.count() <= 0) return finish(Outcome::timeout, "deadline already passed");
    total_ms = static_cast<long>(left.count());
  }
  if (request.cancelled && request.cancelled()) return finish(Outcome::cancelled, "cancelled");

  CURL* h = static_cast<CURL*>(acquire());
  struct Releaser {
    CurlPool* pool;
    CURL* h;
    curl_slist* headers = nullptr;
    ~Releaser() {
      curl_slist_free_all(headers);
      curl_easy_reset(h);  // clears options, keeps live connections and caches
      pool->release(h);
    }
  } releaser{this, h};

  for (const auto& hd : request.headers) {
    curl_slist* next = curl_slist_append(releaser.headers, hd.c_str());
    if (next == nullptr) throw Error(Status::no_memory, "libcurl: curl_slist_append failed");
    releaser.headers = next;
  }

  TransferState st;
  st.request = &request;
  st.body = &result.body;
  st.retry_after = &result.retry_after;
  char errbuf[CURL_ERROR_SIZE] = {0};

  curl_easy_setopt(h, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_POST, 1L);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.data());
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, releaser.headers);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &st);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &st);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, &st);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   std::max<long>(1, total_ms > 0 ? std::min(total_ms, request.connect_timeout_ms)
                                                   : request.connect_timeout_ms));
  if (total_ms > 0) curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, total_ms);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");

  CURLcode rc = curl_easy_perform(h);
  if (rc == CURLE_OK) {
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &result.status);
    return finish(Outcome::ok, "");
  }
  std::string msg = errbuf[0] ? std::string(errbuf) : std::string(curl_easy_strerror(rc));
  if (st.too_large)
    return finish(Outcome::too_large, "response larger than " +
                                          std::to_string(request.max_response_bytes) + " bytes");
  if (st.was_cancelled || rc == CURLE_ABORTED_BY_CALLBACK) return finish(Outcome::cancelled, "cancelled");
  switch (rc) {
    case CURLE_OPERATION_TIMEDOUT: return finish(Outcome::timeout, msg);
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return finish(Outcome::connect, msg);
    default: return finish(Outcome::transport, msg);
  }
}

}  // namespace routenlp::http
