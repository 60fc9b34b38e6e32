#include "control/sources.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <memory>

#include "base/fd.h"
#include "base/fs.h"
#include "dockerfile/dockerignore.h"

namespace ocib::control {

Status open_named_contexts(const Options& opts, store::Store& st, std::map<std::string, plan::NamedContext>& named,
                           std::map<std::string, std::string>& layout_images) {
  for (const auto& [raw_name, value] : opts.build_contexts) {
    std::string name = raw_name;
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    plan::NamedContext c;
    auto bad = [&](const std::string& why) {
      return Error::invalid("--build-context " + raw_name + "=" + value + ": " + why);
    };
    if (value.rfind("docker-image://", 0) == 0) {
      c.image = value.substr(15);
      if (c.image.empty()) return bad("no image reference after docker-image://");
    } else if (value.rfind("oci-layout://", 0) == 0) {
      // oci-layout://DIR[:TAG][@DIGEST], as buildx.
      std::string rest = value.substr(13), selector;
      if (auto at = rest.find('@'); at != std::string::npos) {
        selector = rest.substr(at);
        rest = rest.substr(0, at);
      } else if (auto colon = rest.rfind(':'); colon != std::string::npos && rest.find('/', colon) == std::string::npos) {
        selector = rest.substr(colon + 1);
        rest = rest.substr(0, colon);
      }
      auto digest = images::import_oci_layout(st, rest, selector);
      if (!digest.ok()) return bad(digest.error().message());
      c.image = value;
      layout_images[value] = *digest;
    } else if (value.find("://") != std::string::npos || value.rfind("git@", 0) == 0) {
      return bad("only a local directory, docker-image:// and oci-layout:// are supported");
    } else {
      auto real = fs::real_path(value);
      if (!real.ok() || !fs::is_dir(*real)) return bad("not a directory");
      c.dir = *real;
      c.fd = std::make_shared<UniqueFd>(::open(c.dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
      if (!c.fd->valid()) return Error::from_errno("open build context " + c.dir, errno);
      // Its own .dockerignore, as BuildKit applies to every local context.
      if (std::string ip = fs::join(c.dir, ".dockerignore"); fs::exists(ip)) {
        OCIB_ASSIGN_OR_RETURN(std::string itext, fs::read_file(ip));
        auto m = dockerfile::parse_dockerignore(itext);
        if (!m.ok()) return std::move(m).error().wrap(ip);
        auto ignore = std::make_shared<dockerfile::Matcher>(std::move(m).value());
        c.filter.excluded = [ignore](const std::string& rel, bool is_dir) { return ignore->excluded(rel, is_dir); };
        c.filter.descend = [ignore](const std::string& rel) { return ignore->may_contain_included(rel); };
      }
    }
    named[name] = std::move(c);
  }
  return {};
}

}  // namespace ocib::control
