// `ocib build https://host/repo.git#REF:SUBDIR`: a git repository as the build context, as
// buildx and BuildKit take it. git itself does the fetching (its transports, credentials
// helpers and proxy settings are the user's); ocib only turns the URL into a checkout.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/fd.h"
#include "base/fs.h"
#include "base/process.h"
#include "control/control.h"

namespace ocib::control {

namespace {

// Runs git with `args`, what it says captured; its exit status.
Result<int> run_git(const std::vector<std::string>& args, std::string* output) {
  std::vector<std::string> argv = {"git"};
  argv.insert(argv.end(), args.begin(), args.end());
  // Never wait for a password on the terminal: a build fails instead.
  auto rc = run_captured(argv, output, {"GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=/bin/true"});
  if (!rc.ok()) return Error(Errc::kUnsupported, "a git context needs git on PATH: " + rc.error().message());
  return rc;
}

std::string last_line(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  auto nl = s.rfind('\n');
  return nl == std::string::npos ? s : s.substr(nl + 1);
}

bool is_hex_commit(const std::string& r) {
  return r.size() == 40 && r.find_first_not_of("0123456789abcdef") == std::string::npos;
}

}  // namespace

bool is_git_url(const std::string& s) {
  // buildx's urlutil.IsGitURL: git:// and git@ prefixes, github.com/, or a URL whose path
  // (before any #fragment) ends in .git; ssh:// too.
  if (s.rfind("git://", 0) == 0 || s.rfind("git@", 0) == 0 || s.rfind("github.com/", 0) == 0 ||
      s.rfind("ssh://", 0) == 0)
    return true;
  if (s.rfind("http://", 0) != 0 && s.rfind("https://", 0) != 0) return false;
  std::string path = s.substr(0, s.find('#'));
  return path.size() > 4 && path.compare(path.size() - 4, 4, ".git") == 0;
}

Result<std::string> git_context(const std::string& spec, const std::string& dir) {
  std::string url = spec, ref, subdir;
  if (auto h = spec.find('#'); h != std::string::npos) {
    url = spec.substr(0, h);
    std::string frag = spec.substr(h + 1);
    auto c = frag.find(':');
    ref = frag.substr(0, c);
    if (c != std::string::npos) subdir = frag.substr(c + 1);
  }
  if (url.rfind("github.com/", 0) == 0) url = "https://" + url;
  if (!ref.empty() && ref[0] == '-') return Error::invalid("git context " + spec + ": invalid ref \"" + ref + "\"");
  const std::string what = "git context " + url + (ref.empty() ? "" : " (" + ref + ")");
  std::string out;
  auto git = [&](std::vector<std::string> args) -> Result<int> {
    out.clear();
    return run_git(args, &out);
  };
  OCIB_ASSIGN_OR_RETURN(int rc, git({"init", "-q", dir}));
  if (rc != 0) return Error(Errc::kIo, what + ": git init: " + last_line(out));
  OCIB_ASSIGN_OR_RETURN(rc, git({"-C", dir, "remote", "add", "origin", url}));
  if (rc != 0) return Error(Errc::kIo, what + ": git remote add: " + last_line(out));
  // A shallow fetch of just the ref; transports without shallow support (dumb HTTP), and
  // commits a server will not hand out by id, get a full fetch.
  const std::string want = ref.empty() ? "HEAD" : ref;
  OCIB_ASSIGN_OR_RETURN(rc, git({"-C", dir, "fetch", "-q", "--depth=1", "--no-tags", "origin", want}));
  std::string checkout = "FETCH_HEAD";
  if (rc != 0) {
    std::string shallow_err = last_line(out);
    if (is_hex_commit(want)) {
      OCIB_ASSIGN_OR_RETURN(rc, git({"-C", dir, "fetch", "-q", "--no-tags", "origin"}));
      checkout = want;
    } else {
      OCIB_ASSIGN_OR_RETURN(rc, git({"-C", dir, "fetch", "-q", "--no-tags", "origin", want}));
    }
    if (rc != 0) return Error(Errc::kIo, what + ": git fetch: " + (last_line(out).empty() ? shallow_err : last_line(out)));
  }
  OCIB_ASSIGN_OR_RETURN(rc, git({"-C", dir, "-c", "advice.detachedHead=false", "checkout", "-q", checkout}));
  if (rc != 0) return Error(Errc::kIo, what + ": git checkout: " + last_line(out));
  OCIB_ASSIGN_OR_RETURN(rc, git({"-C", dir, "submodule", "update", "-q", "--init", "--recursive", "--depth=1"}));
  if (rc != 0) return Error(Errc::kIo, what + ": git submodule update: " + last_line(out));
  // As BuildKit (without BUILDKIT_CONTEXT_KEEP_GIT_DIR): the context has no .git.
  OCIB_TRY(fs::remove_all(fs::join(dir, ".git")));
  if (subdir.empty() || fs::clean("/" + subdir) == "/") return dir;
  // The subdirectory is resolved inside the checkout: a symlink or ".." cannot leave it.
  OCIB_ASSIGN_OR_RETURN(std::string top, fs::real_path(dir));
  auto sub = fs::real_path(fs::join(dir, fs::clean("/" + subdir).substr(1)));
  if (!sub.ok()) return Error(Errc::kNotFound, what + ": subdirectory " + subdir + " not found in the repository");
  if (*sub != top && sub->rfind(top + "/", 0) != 0)
    return Error::invalid(what + ": subdirectory " + subdir + " leads outside the repository");
  if (!fs::is_dir(*sub)) return Error::invalid(what + ": " + subdir + " is not a directory");
  return *sub;
}

}  // namespace ocib::control
