// Variable expansion and quote removal, a port of BuildKit's shell lexer
// (frontend/dockerfile/shell/lex.go) restricted to what a Dockerfile needs.

#include <fnmatch.h>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/log.h"
#include "dockerfile/dockerfile.h"

namespace ocib::dockerfile {
namespace {

enum class Mode {
  kKeepQuotes,  // expand(): quotes and escapes stay, except escape + '$' -> '$'
  kProcess,     // process_word(): expand, then drop quotes and resolve escapes
  kUnquote,     // unquote(): drop quotes and resolve escapes, '$' is an ordinary char
  kRaw,         // expand_raw(): quotes are ordinary chars (expanded inside), escapes resolved
};

constexpr int kEof = -1;

bool is_name_char(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c >= 0x80;
}
bool is_digit(int c) { return c >= '0' && c <= '9'; }
bool is_special_param(int c) {
  return c == '@' || c == '*' || c == '#' || c == '?' || c == '-' || c == '$' || c == '!' ||
         c == '0';
}

// BuildKit's word list for ProcessWords: whitespace outside quotes ends a word, including
// whitespace an unquoted expansion brings in; quoted text (even "") belongs to the word.
struct Words {
  std::vector<std::string> list;
  std::string cur;
  bool in_word = false;
  void add_char(char c) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') {
      if (in_word) list.push_back(std::move(cur));
      cur.clear();
      in_word = false;
    } else {
      cur += c;
      in_word = true;
    }
  }
  void add_string(const std::string& s) {
    for (char c : s) add_char(c);
  }
  void add_raw(const std::string& s) {
    cur += s;
    in_word = true;
  }
  std::vector<std::string> finish() {
    if (in_word) list.push_back(std::move(cur));
    return std::move(list);
  }
};

class Lexer {
 public:
  Lexer(std::string_view s, const std::map<std::string, std::string>* vars, char escape, Mode mode)
      : s_(s), vars_(vars), escape_(static_cast<unsigned char>(escape)), mode_(mode) {}

  /// Also splits the result into words (ProcessWords), into `words`.
  void split_into(Words* words) { words_ = words; }

  Result<std::string> run() {
    auto r = stop_on(kEof, false);
    if (!r.ok()) {
      return Error::invalid("failed to process \"" + log::printable(s_, 100) +
                            "\": " + r.error().message());
    }
    return r;
  }

 private:
  int peek() const { return pos_ < s_.size() ? static_cast<unsigned char>(s_[pos_]) : kEof; }
  int next() { return pos_ < s_.size() ? static_cast<unsigned char>(s_[pos_++]) : kEof; }
  bool keep() const { return mode_ == Mode::kKeepQuotes; }

  // Reads until `stop` (consumed) or the end of input (an error unless stop is kEof).
  // `raw_escapes` keeps escape chars in the result (patterns of ${V#p} and ${V/p/r}).
  Result<std::string> stop_on(int stop, bool raw_escapes) {
    std::string out;
    Words* words = stop == kEof ? words_ : nullptr;  // only the top level splits
    while (peek() != kEof) {
      int ch = peek();
      if (stop != kEof && ch == stop) {
        next();
        return out;
      }
      if (ch == '$' && mode_ != Mode::kUnquote) {
        OCIB_ASSIGN_OR_RETURN(std::string v, dollar());
        out += v;
        if (words) words->add_string(v);
        continue;
      }
      if (ch == '\'' && mode_ != Mode::kRaw) {
        next();
        OCIB_ASSIGN_OR_RETURN(std::string v, single_quote());
        out += keep() ? "'" + v + "'" : v;
        if (words) words->add_raw(v);
        continue;
      }
      if (ch == '"' && mode_ != Mode::kRaw) {
        next();
        OCIB_ASSIGN_OR_RETURN(std::string v, double_quote());
        out += keep() ? "\"" + v + "\"" : v;
        if (words) words->add_raw(v);
        continue;
      }
      next();
      if (words && ch != escape_) {
        words->add_char(static_cast<char>(ch));
        out += static_cast<char>(ch);
        continue;
      }
      if (words) {  // kProcess: the escaped char is literal
        int n = next();
        if (n == kEof) break;
        out += static_cast<char>(n);
        words->add_raw(std::string(1, static_cast<char>(n)));
        continue;
      }
      if (ch == escape_) {
        int n = peek();
        if (keep()) {
          if (n == '$') {
            out += static_cast<char>(next());
          } else if (n == kEof) {
            out += static_cast<char>(ch);
          } else {
            out += static_cast<char>(ch);
            out += static_cast<char>(next());
          }
          continue;
        }
        if (raw_escapes) out += static_cast<char>(ch);
        n = next();
        if (n == kEof) break;  // an escape at the very end is dropped
        out += static_cast<char>(n);
        continue;
      }
      out += static_cast<char>(ch);
    }
    if (stop != kEof) {
      return Error::invalid(std::string("unexpected end of statement while looking for matching ") +
                            static_cast<char>(stop));
    }
    return out;
  }

  Result<std::string> single_quote() {
    std::string out;
    for (;;) {
      int ch = next();
      if (ch == kEof) {
        return Error::invalid(
            "unexpected end of statement while looking for matching single-quote");
      }
      if (ch == '\'') return out;
      out += static_cast<char>(ch);
    }
  }

  Result<std::string> double_quote() {
    std::string out;
    for (;;) {
      int ch = peek();
      if (ch == kEof) {
        return Error::invalid(
            "unexpected end of statement while looking for matching double-quote");
      }
      if (ch == '"') {
        next();
        return out;
      }
      if (ch == '$' && mode_ != Mode::kUnquote) {
        OCIB_ASSIGN_OR_RETURN(std::string v, dollar());
        out += v;
        continue;
      }
      next();
      if (ch == escape_) {
        int n = peek();
        if (n == kEof) continue;
        if (n == '"' || n == '$' || n == escape_) {
          next();
          if (keep() && n != '$') out += static_cast<char>(ch);
          out += static_cast<char>(n);
          continue;
        }
      }
      out += static_cast<char>(ch);
    }
  }

  std::string name() {
    std::string n;
    while (peek() != kEof) {
      int ch = peek();
      if (n.empty() && is_digit(ch)) {
        while (is_digit(peek())) n += static_cast<char>(next());
        return n;
      }
      if (n.empty() && is_special_param(ch)) {
        n += static_cast<char>(next());
        return n;
      }
      if (!is_name_char(ch)) break;
      n += static_cast<char>(next());
    }
    return n;
  }

  std::optional<std::string> get(const std::string& n) const {
    auto it = vars_->find(n);
    if (it == vars_->end()) return std::nullopt;
    return it->second;
  }

  // Translates a pattern with raw escapes into an fnmatch(3) pattern.
  std::string glob(const std::string& p) const {
    std::string out;
    for (size_t i = 0; i < p.size(); ++i) {
      unsigned char c = static_cast<unsigned char>(p[i]);
      if (c == escape_ && i + 1 < p.size()) {
        out += '\\';
        out += p[++i];
      } else if (c == '\\') {
        out += "\\\\";
      } else {
        out += static_cast<char>(c);
      }
    }
    return out;
  }

  static bool matches(const std::string& pattern, const std::string& s) {
    return fnmatch(pattern.c_str(), s.c_str(), 0) == 0;
  }

  std::string trim(const std::string& value, std::string pattern, bool suffix, bool greedy) const {
    std::string g = glob(pattern);
    size_t n = value.size();
    for (size_t k = 0; k <= n; ++k) {
      size_t len = greedy ? n - k : k;  // length of the part removed
      if (suffix) {
        if (matches(g, value.substr(n - len))) return value.substr(0, n - len);
      } else {
        if (matches(g, value.substr(0, len))) return value.substr(len);
      }
    }
    return value;
  }

  std::string replace(const std::string& value, const std::string& pattern,
                      const std::string& replacement, bool all) const {
    std::string g = glob(pattern);
    std::string out;
    size_t i = 0;
    bool done = false;
    while (i <= value.size()) {
      bool found = false;
      if (!done) {
        for (size_t end = value.size() + 1; end-- > i;) {  // longest match at i
          if (matches(g, value.substr(i, end - i))) {
            out += replacement;
            if (!all) done = true;
            if (end > i) {
              i = end;
            } else {
              if (i < value.size()) out += value[i];
              ++i;
            }
            found = true;
            break;
          }
        }
      }
      if (!found) {
        if (i < value.size()) out += value[i];
        ++i;
      }
    }
    return out;
  }

  Result<std::string> dollar() {
    next();  // '$'
    if (peek() != '{') {
      std::string n = name();
      if (n.empty()) return std::string("$");
      return get(n).value_or("");
    }
    next();  // '{'
    switch (peek()) {
      case kEof:
        return Error::invalid("syntax error: missing '}'");
      case '{':
      case '}':
      case ':':
        return Error::invalid("syntax error: bad substitution");
      default:
        break;
    }
    std::string n = name();
    int ch = next();
    if (ch == kEof) return Error::invalid("syntax error: missing '}'");
    std::string chs(1, static_cast<char>(ch));
    bool null_is_unset = false;
    if (ch == '}') return get(n).value_or("");
    if (ch == ':') {
      null_is_unset = true;
      ch = next();
      if (ch == kEof) return Error::invalid("syntax error: missing '}'");
      chs += static_cast<char>(ch);
    }
    if (ch == '+' || ch == '-' || ch == '?' || ch == '#' || ch == '%') {
      bool raw = ch == '#' || ch == '%';
      if (null_is_unset && raw) {
        return Error::invalid("unsupported modifier (" + chs + ") in substitution");
      }
      auto word = stop_on('}', raw);
      if (!word.ok()) {
        if (peek() == kEof) return Error::invalid("syntax error: missing '}'");
        return std::move(word).error();
      }
      std::optional<std::string> value = get(n);
      bool empty = !value || (null_is_unset && value->empty());
      switch (ch) {
        case '-':
          return empty ? *word : *value;
        case '+':
          return empty ? std::string() : *word;
        case '?':
          if (empty) {
            std::string msg = !value ? "is not allowed to be unset" : "is not allowed to be empty";
            return Error::invalid(n + ": " + (word->empty() ? msg : *word));
          }
          return *value;
        default: {  // '#' or '%'
          std::string pattern = *word;
          bool greedy = false;
          if (!pattern.empty() && pattern[0] == static_cast<char>(ch)) {
            greedy = true;
            pattern.erase(0, 1);
          }
          return trim(value.value_or(""), pattern, ch == '%', greedy);
        }
      }
    }
    if (ch == '/' && !null_is_unset) {
      bool all = peek() == '/';
      if (all) next();
      auto pattern = stop_on('/', true);
      if (!pattern.ok()) {
        if (peek() == kEof) return Error::invalid("syntax error: missing '/' in ${}");
        return std::move(pattern).error();
      }
      auto replacement = stop_on('}', true);
      if (!replacement.ok()) {
        if (peek() == kEof) return Error::invalid("syntax error: missing '}'");
        return std::move(replacement).error();
      }
      return replace(get(n).value_or(""), *pattern, *replacement, all);
    }
    return Error::invalid("unsupported modifier (" + chs + ") in substitution");
  }

  std::string_view s_;
  size_t pos_ = 0;
  const std::map<std::string, std::string>* vars_;
  int escape_;
  Mode mode_;
  Words* words_ = nullptr;
};

}  // namespace

Result<std::string> expand(std::string_view s, const std::map<std::string, std::string>& vars,
                           char escape) {
  return Lexer(s, &vars, escape, Mode::kKeepQuotes).run();
}

Result<std::string> process_word(std::string_view s, const std::map<std::string, std::string>& vars,
                                 char escape) {
  return Lexer(s, &vars, escape, Mode::kProcess).run();
}

Result<std::vector<std::string>> process_words(std::string_view s, const std::map<std::string, std::string>& vars,
                                               char escape) {
  Words words;
  Lexer lx(s, &vars, escape, Mode::kProcess);
  lx.split_into(&words);
  OCIB_TRY(lx.run());
  return words.finish();
}

Result<std::string> expand_raw(std::string_view s, const std::map<std::string, std::string>& vars) {
  return Lexer(s, &vars, '\\', Mode::kRaw).run();
}

Result<std::string> unquote(std::string_view s, char escape) {
  static const std::map<std::string, std::string> kNoVars;
  return Lexer(s, &kNoVars, escape, Mode::kUnquote).run();
}

}  // namespace ocib::dockerfile
