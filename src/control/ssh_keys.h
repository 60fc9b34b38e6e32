#pragma once
// `--ssh ID=KEY[,KEY...]` with private key files, as buildx: BuildKit loads such keys into an
// agent of its own; ocib starts one (OpenSSH's ssh-agent, on a socket in a private directory,
// ended with the build) and forwards it like a user's agent socket.

#include <string>
#include <sys/types.h>
#include <vector>

#include "base/error.h"

namespace ocib::control {

struct Options;

/// One `--ssh` value as buildx takes it: `default` or `ID` (the agent at $SSH_AUTH_SOCK),
/// `ID=SOCKET`, or `ID=KEY[,KEY...]` (private key files). Fills Options::ssh or ssh_keys;
/// errors are usage errors.
Status add_ssh_spec(const std::string& value, Options& opts);

class KeyAgent {
 public:
  /// Starts ssh-agent and adds `keys` (paths) with ssh-add. A passphrase-protected key is an
  /// error (nothing prompts during a build), as is a file that is not a private key.
  static Result<KeyAgent> start(const std::string& id, const std::vector<std::string>& keys);
  KeyAgent(KeyAgent&& o) noexcept : pid_(o.pid_), dir_(std::move(o.dir_)), socket_(std::move(o.socket_)) { o.pid_ = -1; }
  KeyAgent& operator=(KeyAgent&&) = delete;
  KeyAgent(const KeyAgent&) = delete;
  ~KeyAgent();
  const std::string& socket() const { return socket_; }

 private:
  KeyAgent() = default;
  pid_t pid_ = -1;
  std::string dir_, socket_;
};

}  // namespace ocib::control
