// .dockerignore, following moby/patternmatcher (patternmatcher.go, ignorefile/ignorefile.go).

#include "dockerfile/dockerignore.h"

#include <sys/stat.h>

#include <string>
#include <string_view>
#include <vector>

namespace ocib::dockerfile {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

std::string_view trim_space(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// Go's path/filepath.Clean for '/'-separated paths.
std::string clean(std::string_view p) {
  if (p.empty()) return ".";
  bool rooted = p[0] == '/';
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (i < p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    std::string_view c = p.substr(i, j - i);
    i = j + 1;
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      if (!parts.empty() && parts.back() != "..") {
        parts.pop_back();
      } else if (!rooted) {
        parts.push_back(c);
      }
      continue;
    }
    parts.push_back(c);
  }
  std::string out = rooted ? "/" : "";
  for (size_t k = 0; k < parts.size(); ++k) {
    if (k > 0) out += '/';
    out += parts[k];
  }
  if (out.empty()) return ".";
  return out;
}

size_t utf8_len(unsigned char c) {
  if (c < 0x80) return 1;
  if ((c >> 5) == 0x6) return 2;
  if ((c >> 4) == 0xE) return 3;
  if ((c >> 3) == 0x1E) return 4;
  return 1;
}

// filepath.Match's syntax check (the error patternmatcher.New reports).
bool valid_syntax(std::string_view p) {
  for (size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '\\') {
      if (++i >= p.size()) return false;
    } else if (c == '[') {
      ++i;
      if (i < p.size() && p[i] == '^') ++i;
      int n = 0;
      for (;;) {
        if (i >= p.size()) return false;
        if (p[i] == ']' && n > 0) break;
        auto esc = [&]() {  // getEsc
          if (i >= p.size() || p[i] == '-' || p[i] == ']') return false;
          if (p[i] == '\\' && ++i >= p.size()) return false;
          ++i;
          return true;
        };
        if (!esc()) return false;
        if (i < p.size() && p[i] == '-') {
          ++i;
          if (!esc()) return false;
        }
        ++n;
      }
    }
  }
  return true;
}

struct Token {
  enum Kind { kLit, kOne, kStar, kDirStar, kAll, kClass } kind;
  explicit Token(Kind k, char ch = 0) : kind(k), c(ch) {}
  char c = 0;
  bool negate = false;
  std::vector<std::pair<unsigned char, unsigned char>> ranges;
};

enum class MatchType { kExact, kPrefix, kSuffix, kRegexp };

struct Compiled {
  MatchType type = MatchType::kExact;
  std::vector<Token> tokens;
};

// patternmatcher's Pattern.compile, producing tokens instead of a Go regexp.
Compiled compile(std::string_view p) {
  Compiled out;
  MatchType t = MatchType::kExact;
  size_t i = 0;
  for (int n = 0; i < p.size(); ++n) {
    char ch = p[i++];
    if (ch == '*') {
      if (i < p.size() && p[i] == '*') {
        ++i;
        if (i < p.size() && p[i] == '/') ++i;
        if (i == p.size()) {
          if (t == MatchType::kExact) {
            t = MatchType::kPrefix;
          } else {
            out.tokens.push_back(Token(Token::kAll));
            t = MatchType::kRegexp;
          }
        } else {
          out.tokens.push_back(Token(Token::kDirStar));
          t = MatchType::kRegexp;
        }
        if (n == 0) t = MatchType::kSuffix;
      } else {
        out.tokens.push_back(Token(Token::kStar));
        t = MatchType::kRegexp;
      }
    } else if (ch == '?') {
      out.tokens.push_back(Token(Token::kOne));
      t = MatchType::kRegexp;
    } else if (ch == '\\') {
      if (i < p.size()) {
        Token tok(Token::kLit);
        tok.c = p[i++];
        out.tokens.push_back(tok);
        t = MatchType::kRegexp;
      } else {
        Token tok(Token::kLit);
        tok.c = '\\';
        out.tokens.push_back(tok);
      }
    } else if (ch == '[') {
      Token tok(Token::kClass);
      if (i < p.size() && p[i] == '^') {
        tok.negate = true;
        ++i;
      }
      bool first = true;
      while (i < p.size() && (p[i] != ']' || first)) {
        first = false;
        unsigned char lo = static_cast<unsigned char>(p[i++]);
        if (lo == '\\' && i < p.size()) lo = static_cast<unsigned char>(p[i++]);
        unsigned char hi = lo;
        if (i + 1 < p.size() && p[i] == '-' && p[i + 1] != ']') {
          ++i;
          hi = static_cast<unsigned char>(p[i++]);
          if (hi == '\\' && i < p.size()) hi = static_cast<unsigned char>(p[i++]);
        }
        tok.ranges.emplace_back(lo, hi);
      }
      if (i < p.size()) ++i;  // ']'
      out.tokens.push_back(tok);
      t = MatchType::kRegexp;
    } else {
      Token tok(Token::kLit);
      tok.c = ch;
      out.tokens.push_back(tok);
      if (ch == ']') t = MatchType::kRegexp;
    }
  }
  out.type = t;
  return out;
}

class TokenMatcher {
 public:
  TokenMatcher(const std::vector<Token>& t, std::string_view s)
      : t_(t), s_(s), seen_((t.size() + 1) * (s.size() + 1), 0) {}
  bool run() { return at(0, 0); }

 private:
  bool at(size_t ti, size_t si) {
    if (ti == t_.size()) return si == s_.size();
    char& seen = seen_[ti * (s_.size() + 1) + si];
    if (seen) return false;  // already failed from here
    seen = 1;
    const Token& tok = t_[ti];
    switch (tok.kind) {
      case Token::kLit:
        return si < s_.size() && s_[si] == tok.c && at(ti + 1, si + 1);
      case Token::kOne:
        return si < s_.size() && s_[si] != '/' &&
               at(ti + 1, std::min(s_.size(), si + utf8_len(static_cast<unsigned char>(s_[si]))));
      case Token::kClass: {
        if (si >= s_.size()) return false;
        unsigned char c = static_cast<unsigned char>(s_[si]);
        bool in = false;
        for (auto [lo, hi] : tok.ranges) in = in || (c >= lo && c <= hi);
        return in != tok.negate && at(ti + 1, si + 1);
      }
      case Token::kStar:
        for (size_t k = si;; ++k) {
          if (at(ti + 1, k)) return true;
          if (k >= s_.size() || s_[k] == '/') return false;
        }
      case Token::kDirStar:  // (.*/)?
        if (at(ti + 1, si)) return true;
        for (size_t k = si; k < s_.size(); ++k) {
          if (s_[k] == '/' && at(ti + 1, k + 1)) return true;
        }
        return false;
      case Token::kAll:
        for (size_t k = si; k <= s_.size(); ++k) {
          if (at(ti + 1, k)) return true;
        }
        return false;
    }
    return false;
  }

  const std::vector<Token>& t_;
  std::string_view s_;
  std::vector<char> seen_;
};

bool pattern_match(std::string_view pattern, std::string_view path) {
  Compiled c = compile(pattern);
  switch (c.type) {
    case MatchType::kExact:
      return path == pattern;
    case MatchType::kPrefix:
      return path.substr(0, pattern.size() - 2) == pattern.substr(0, pattern.size() - 2);
    case MatchType::kSuffix: {
      std::string_view suffix = pattern.substr(2);
      if (path.size() >= suffix.size() && path.substr(path.size() - suffix.size()) == suffix) {
        return true;
      }
      return !suffix.empty() && suffix[0] == '/' && path == suffix.substr(1);
    }
    case MatchType::kRegexp:
      return TokenMatcher(c.tokens, path).run();
  }
  return false;
}

// The pattern matches `path` or one of its parent directories.
bool matches_or_parent(std::string_view pattern, std::string_view path) {
  if (pattern_match(pattern, path)) return true;
  for (size_t k = path.find('/'); k != std::string_view::npos; k = path.find('/', k + 1)) {
    if (pattern_match(pattern, path.substr(0, k))) return true;
  }
  return false;
}

std::vector<std::string_view> split(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  for (;;) {
    size_t j = s.find('/', i);
    out.push_back(s.substr(i, j == std::string_view::npos ? std::string_view::npos : j - i));
    if (j == std::string_view::npos) break;
    i = j + 1;
  }
  return out;
}

bool file_exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

Result<Matcher> parse_dockerignore(std::string_view text) {
  Matcher m;
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (!line.empty() && line[0] == '#') continue;
    line = trim_space(line);
    if (line.empty()) continue;
    bool invert = line[0] == '!';
    if (invert) line = trim_space(line.substr(1));
    std::string p(line);
    if (!p.empty()) {
      p = clean(p);
      if (p.size() > 1 && p[0] == '/') p.erase(0, 1);
    }
    // patternmatcher.New: trims again, cleans again, splits off '!'.
    if (invert && p.empty()) return Error::invalid("illegal exclusion pattern: \"!\"");
    p = clean(trim_space(p));
    if (!valid_syntax(p)) return Error::invalid("syntax error in pattern: " + p);
    m.patterns_.push_back(Matcher::Pattern{p, invert});
  }
  return m;
}

bool Matcher::has_exclusions() const {
  for (const Pattern& p : patterns_) {
    if (p.exclusion) return true;
  }
  return false;
}

bool Matcher::excluded(std::string_view rel_path, bool /*is_dir*/) const {
  std::string path = clean(rel_path);
  if (path == "." || path == "/") return false;
  if (path[0] == '/') path.erase(0, 1);
  bool matched = false;
  for (const Pattern& p : patterns_) {
    // An exclusion only matters once matched, an inclusion only while not matched.
    if (p.exclusion != matched) continue;
    if (matches_or_parent(p.text, path)) matched = !p.exclusion;
  }
  return matched;
}

bool Matcher::may_contain_included(std::string_view dir) const {
  std::string d = clean(dir);
  if (!d.empty() && d[0] == '/') d.erase(0, 1);
  if (d == "." || d.empty()) return has_exclusions();
  std::vector<std::string_view> dc = split(d);
  for (const Pattern& p : patterns_) {
    if (!p.exclusion) continue;
    std::vector<std::string_view> pc = split(p.text);
    bool possible = true;
    for (size_t k = 0; k < pc.size() && k < dc.size(); ++k) {
      if (pc[k].find("**") != std::string_view::npos) break;  // any depth: possible
      Compiled c = compile(pc[k]);
      if (!TokenMatcher(c.tokens, dc[k]).run()) {
        possible = false;
        break;
      }
    }
    if (possible) return true;
  }
  return false;
}

std::string default_dockerfile(const std::string& context) {
  // BuildKit (dockerui): "Dockerfile", else a lowercase "dockerfile".
  if (!file_exists(context + "/Dockerfile") && file_exists(context + "/dockerfile")) return "dockerfile";
  return "Dockerfile";
}

std::string dockerignore_path(const std::string& context, const std::string& dockerfile_path) {
  if (dockerfile_path != "-") {
    std::string df = dockerfile_path.empty() ? context + "/" + default_dockerfile(context) : dockerfile_path;
    if (file_exists(df + ".dockerignore")) return df + ".dockerignore";
  }
  std::string root = context + "/.dockerignore";
  if (file_exists(root)) return root;
  return "";
}

}  // namespace ocib::dockerfile
