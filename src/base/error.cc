#include "base/error.h"

#include <cstring>

namespace ocib {

Error Error::from_errno(const std::string& what, int err) {
  Error e(Errc::kIo, what + ": " + std::strerror(err));
  e.errno_ = err;
  return e;
}

std::string Error::str() const {
  std::string out;
  if (loc_ && !loc_->file.empty()) {
    out += loc_->file;
    if (loc_->line > 0) out += ":" + std::to_string(loc_->line);
    if (loc_->col > 0) out += ":" + std::to_string(loc_->col);
    out += ": ";
  }
  return out + body();
}

std::string Error::body() const {
  std::string out;
  for (auto it = context_.rbegin(); it != context_.rend(); ++it) out += *it + ": ";
  return out + message_;
}

}  // namespace ocib
