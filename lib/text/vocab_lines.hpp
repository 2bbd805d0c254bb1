// Vocabulary text to tokens, shared by WordPieceTokenizer::from_vocab_file and the checkpoints
// that carry vocab.txt bytes (neural router, local classifier tier), so all read a vocabulary
// the same way. Internal header.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace routenlp::detail {

// Drops trailing ' ', '\t' and '\r' from one vocabulary line (HF: Rust str::trim_end).
void trim_vocab_line(std::string& line);

// One token per '\n'-separated line, each trimmed by trim_vocab_line; no token for the empty
// remainder after a final '\n'.
std::vector<std::string> vocab_lines(std::string_view text);

}  // namespace routenlp::detail
