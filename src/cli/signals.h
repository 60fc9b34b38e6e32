#pragma once
// SIGINT/SIGTERM handling: the handler only writes to a self-pipe; a watcher thread turns the
// signal into a cancellation of running steps and of layer packing (base/cancel.h), so an
// interrupted build unwinds normally (staging removed, no half-written blobs or cache entries)
// and exits 128 + the signal: 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP.

namespace ocib::cli {

/// Installs the handlers and starts the watcher. Call once, before work starts.
void install_signal_handlers();
/// True once SIGINT/SIGTERM arrived.
bool interrupted();
/// 128 + the first signal that arrived; 0 when none did.
int interrupted_exit_code();

}  // namespace ocib::cli
