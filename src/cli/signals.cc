#include "cli/signals.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "base/cancel.h"
#include "sandbox/sandbox.h"

namespace ocib::cli {

namespace {
int g_pipe[2] = {-1, -1};
std::atomic<int> g_signal{0};  // the first SIGINT/SIGTERM/SIGHUP, 0 before

void on_signal(int sig) {
  unsigned char c = static_cast<unsigned char>(sig);
  int saved = errno;
  (void)!write(g_pipe[1], &c, 1);
  errno = saved;
}
}  // namespace

void install_signal_handlers() {
  if (pipe2(g_pipe, O_CLOEXEC) != 0) return;
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
  std::thread([] {
    unsigned char c;
    int count = 0;
    while (read(g_pipe[0], &c, 1) == 1) {
      int none = 0;
      g_signal.compare_exchange_strong(none, c);
      if (++count > 1) _exit(128 + c);  // a second ^C: leave now
      const char msg[] = "ocib: interrupted, cancelling running steps\n";
      (void)!write(2, msg, sizeof msg - 1);
      request_cancel();  // work in this process (layer packing) polls it
      sandbox::cancel_all();
    }
  }).detach();
}

bool interrupted() { return g_signal.load() != 0; }

int interrupted_exit_code() {
  int sig = g_signal.load();
  return sig ? 128 + sig : 0;
}

}  // namespace ocib::cli
