#include "base/cancel.h"

#include <atomic>

namespace ocib {

namespace {
std::atomic<bool> g_cancel{false};
}  // namespace

void request_cancel() { g_cancel.store(true, std::memory_order_relaxed); }

bool cancel_requested() { return g_cancel.load(std::memory_order_relaxed); }

Status check_cancelled(const std::string& what) {
  if (!cancel_requested()) return {};
  return Error(Errc::kCancelled, what + ": cancelled");
}

}  // namespace ocib
