#pragma once
// Minimal leveled logging to stderr. Debug is a no-op unless OCIB_DEBUG is set.

#include <cstddef>
#include <string>
#include <string_view>

namespace ocib::log {

/// `text` (from a Dockerfile, a step's output, a tar entry name: untrusted) made safe to show
/// on a terminal: C0 control characters other than tab, DEL, C1 controls (U+0080..U+009F) and
/// bytes that are not UTF-8 become "\x1b"-style escapes (C1 as "\u009b"); everything else,
/// valid UTF-8 included, is kept. Newlines are escaped too: the result is one line.
std::string escape_control(std::string_view text);
/// escape_control of at most about `max` bytes of `text` (cut at a character boundary): a
/// longer text ends in "... (N bytes)".
std::string printable(std::string_view text, size_t max = 200);

bool debug_enabled();
void debug(std::string_view msg);
void warn(std::string_view msg);
/// "ocib: error: msg"
void error(std::string_view msg);

}  // namespace ocib::log
