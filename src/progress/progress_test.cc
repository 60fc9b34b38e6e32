#include "progress/progress.h"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "base/fd.h"
#include "base/fs.h"

namespace ocib::progress {
namespace {

// What a step may print to take over the user's terminal: a title change (OSC 0), a clipboard
// write (OSC 52), clearing the screen, and an 8-bit CSI.
const std::string kHostile = "hi \x1b]0;pwned\x07 \x1b]52;c;ZWNobw==\x07 \x1b[2J\x1b[H \xc2\x9b" "31m";
const std::string kEscaped = "hi \\x1b]0;pwned\\x07 \\x1b]52;c;ZWNobw==\\x07 \\x1b[2J\\x1b[H \\u009b31m";

TEST(TerminalText, EscapesControlsKeepsTextNewlinesAndTabs) {
  EXPECT_EQ(terminal_text("plain\ttext ü\nnext"), "plain\ttext ü\nnext");
  EXPECT_EQ(terminal_text(kHostile), kEscaped);
  // Carriage returns: what the terminal would leave on the line (a progress bar's last state).
  EXPECT_EQ(terminal_text(" 10%\r 50%\r100%"), "100%");
  EXPECT_EQ(terminal_text("line\r\n"), "line\n");
  EXPECT_EQ(terminal_text("a\rb\nc\rd\r"), "b\nd");
}

// Points fd 2 somewhere else for the lifetime of the object.
class StderrTo {
 public:
  explicit StderrTo(int fd) : saved_(::dup(2)) {
    std::fflush(stderr);
    ::dup2(fd, 2);
  }
  ~StderrTo() { restore(); }
  void restore() {
    if (saved_ < 0) return;
    std::fflush(stderr);
    ::dup2(saved_, 2);
    ::close(saved_);
    saved_ = -1;
  }

 private:
  int saved_;
};

// Escape sequences the output may hold: only those the reporter itself writes (cursor up, erase
// line, SGR colours); any other ESC came from the step.
void expect_only_own_escapes(const std::string& out) {
  for (size_t i = out.find('\x1b'); i != std::string::npos; i = out.find('\x1b', i + 1)) {
    std::string seq = out.substr(i, 5);
    bool own = seq.rfind("\x1b[1A", 0) == 0 || seq.rfind("\x1b[2K", 0) == 0 || seq.rfind("\x1b[0m", 0) == 0 ||
               seq.rfind("\x1b[3", 0) == 0;
    EXPECT_TRUE(own) << "raw escape from the step at " << i << ": " << terminal_text(out.substr(i, 20));
  }
  EXPECT_EQ(out.find('\x07'), std::string::npos) << "a raw BEL reached the terminal";
  EXPECT_EQ(out.find("\xc2\x9b"), std::string::npos) << "a raw 8-bit CSI reached the terminal";
  EXPECT_EQ(out.find("\x1b[2J"), std::string::npos);
  EXPECT_EQ(out.find("\x1b]"), std::string::npos);
}

void feed(Reporter& r) {
  r.started(1, "[1/1] RUN printf '\\033]0;x\\007' \x1b]0;name\x07");
  r.log(1, kHostile);
  // The tty view draws running steps (with their last output lines) every 100 ms.
  std::this_thread::sleep_for(std::chrono::milliseconds(350));
  r.log(1, "more " + kHostile);
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  r.failed(1, "exit code: 1: " + kHostile);
  r.note("warning: " + kHostile);
}

TEST(Progress, TtyViewShowsStepOutputAsText) {
  char path[] = "/tmp/ocib-progress-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  UniqueFd file(fd);
  ::unlink(path);
  {
    StderrTo redirect(file.get());
    auto r = make_reporter("tty");
    feed(*r);
    r.reset();  // joins the drawing thread, which draws a last time
  }
  auto out = fs::read_file("/proc/self/fd/" + std::to_string(file.get()));
  ASSERT_TRUE(out.ok());
  EXPECT_NE(out->find(kEscaped), std::string::npos) << terminal_text(*out);
  EXPECT_NE(out->find("more " + kEscaped), std::string::npos) << "the live view did not show the step's output: "
                                                             << terminal_text(*out);
  expect_only_own_escapes(*out);
}

TEST(Progress, PlainOnATerminalShowsStepOutputAsText) {
  int master = ::posix_openpt(O_RDWR | O_NOCTTY);
  if (master < 0) GTEST_SKIP() << "no pseudo-terminals";
  UniqueFd m(master);
  ASSERT_EQ(::grantpt(master), 0);
  ASSERT_EQ(::unlockpt(master), 0);
  UniqueFd slave(::open(::ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC));
  ASSERT_TRUE(slave.valid());
  std::string out;
  auto drain = [&] {
    char buf[4096];
    while (true) {
      pollfd p{master, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) break;
      ssize_t n = ::read(master, buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
  };
  {
    StderrTo redirect(slave.get());
    auto r = make_reporter("plain");
    r->started(1, "[1/1] RUN x \x1b]0;name\x07");
    r->log(1, kHostile);
    r->failed(1, kHostile);
    r->note(kHostile);
    redirect.restore();
  }
  drain();
  EXPECT_NE(out.find("#1 [1/1] RUN x \\x1b]0;name\\x07"), std::string::npos) << terminal_text(out);
  EXPECT_NE(out.find(kEscaped), std::string::npos) << terminal_text(out);
  EXPECT_EQ(out.find('\x1b'), std::string::npos) << terminal_text(out);
  expect_only_own_escapes(out);
}

TEST(Progress, PlainIntoAFileKeepsOutputByteForByte) {
  char path[] = "/tmp/ocib-progress-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  UniqueFd file(fd);
  ::unlink(path);
  {
    StderrTo redirect(file.get());
    auto r = make_reporter("plain");
    r->log(1, kHostile);
  }
  auto out = fs::read_file("/proc/self/fd/" + std::to_string(file.get()));
  ASSERT_TRUE(out.ok());
  EXPECT_NE(out->find(kHostile), std::string::npos);
}

}  // namespace
}  // namespace ocib::progress
