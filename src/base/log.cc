#include "base/log.h"

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

namespace ocib::log {

static std::mutex g_mu;

bool debug_enabled() {
  static const bool on = std::getenv("OCIB_DEBUG") != nullptr;
  return on;
}

static void emit(std::string_view prefix, std::string_view msg) {
  std::string line;
  line.reserve(prefix.size() + msg.size() + 8);
  line += "ocib: ";
  line += prefix;
  line += msg;
  line += '\n';
  std::lock_guard<std::mutex> lk(g_mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

void debug(std::string_view msg) {
  if (debug_enabled()) emit("debug: ", msg);
}
void warn(std::string_view msg) { emit("warning: ", msg); }
void error(std::string_view msg) { emit("error: ", msg); }

}  // namespace ocib::log
