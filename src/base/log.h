#pragma once
// Minimal leveled logging to stderr. Debug is a no-op unless OCIB_DEBUG is set.

#include <string_view>

namespace ocib::log {

bool debug_enabled();
void debug(std::string_view msg);
void warn(std::string_view msg);
/// "ocib: error: msg"
void error(std::string_view msg);

}  // namespace ocib::log
