#include "registry/reference.h"

#include <cctype>

namespace ocib::registry {

namespace {

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// A path component: lowercase alnum runs joined by '.', '_', '__' or runs of '-'.
bool valid_component(std::string_view c) {
  if (c.empty() || !is_lower_alnum(c.front()) || !is_lower_alnum(c.back())) return false;
  for (size_t i = 0; i < c.size(); ++i) {
    char ch = c[i];
    if (is_lower_alnum(ch) || ch == '-') continue;
    if (ch == '.' || ch == '_') {
      if (!is_lower_alnum(c[i - 1]) && !(ch == '_' && c[i - 1] == '_')) return false;
      continue;
    }
    return false;
  }
  return true;
}

bool valid_tag(std::string_view t) {
  if (t.empty() || t.size() > 128) return false;
  auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  if (!word(t[0])) return false;
  for (char c : t) {
    if (!word(c) && c != '.' && c != '-') return false;
  }
  return true;
}

bool valid_host(std::string_view h) {
  if (h.empty()) return false;
  for (char c : h) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != ':' &&
        c != '[' && c != ']') {
      return false;
    }
  }
  return true;
}

}  // namespace

bool valid_digest(std::string_view d) {
  if (d.size() != 71 || d.substr(0, 7) != "sha256:") return false;
  for (char c : d.substr(7)) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Result<Reference> Reference::parse(std::string_view s) {
  const std::string orig(s);
  auto bad = [&](const std::string& why) {
    return Error::invalid("invalid image reference \"" + orig + "\": " + why);
  };
  if (s.empty()) return bad("empty");
  Reference r;
  if (auto at = s.find('@'); at != std::string_view::npos) {
    r.digest = std::string(s.substr(at + 1));
    s = s.substr(0, at);
    if (!valid_digest(r.digest)) return bad("digest must be sha256:<64 hex digits>");
  }
  // A tag is a ':' after the last '/', so "host:5000/repo" keeps its port.
  size_t slash = s.rfind('/');
  size_t colon = s.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    r.tag = std::string(s.substr(colon + 1));
    s = s.substr(0, colon);
    if (!valid_tag(r.tag)) return bad("invalid tag \"" + r.tag + "\"");
  }
  // The first component is a registry host when it looks like one (has '.' or ':', or is
  // "localhost"), as docker does.
  std::string_view name = s;
  size_t first = s.find('/');
  if (first != std::string_view::npos) {
    std::string_view head = s.substr(0, first);
    if (head.find('.') != std::string_view::npos || head.find(':') != std::string_view::npos ||
        head == "localhost") {
      r.registry = std::string(head);
      name = s.substr(first + 1);
      if (!valid_host(r.registry)) return bad("invalid registry host \"" + r.registry + "\"");
    }
  }
  if (r.registry.empty() || r.registry == "index.docker.io" ||
      r.registry == "registry-1.docker.io") {
    r.registry = kDockerHub;
  }
  if (name.empty()) return bad("missing repository name");
  r.repository = std::string(name);
  if (r.registry == kDockerHub && r.repository.find('/') == std::string::npos) {
    r.repository = "library/" + r.repository;
  }
  size_t start = 0;
  while (true) {
    size_t end = r.repository.find('/', start);
    std::string_view comp =
        std::string_view(r.repository)
            .substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!valid_component(comp)) {
      return bad("repository name must be lowercase letters, digits and separators");
    }
    if (end == std::string::npos) break;
    start = end + 1;
  }
  if (r.repository.size() > 255) return bad("repository name too long");
  if (r.tag.empty() && r.digest.empty()) r.tag = "latest";
  return r;
}

std::string Reference::str() const {
  std::string s = registry + "/" + repository;
  if (!tag.empty()) s += ":" + tag;
  if (!digest.empty()) s += "@" + digest;
  return s;
}

std::string Reference::ref_or_tag() const { return digest.empty() ? tag : digest; }

}  // namespace ocib::registry
