// Dockerfile parser, following BuildKit's frontend/dockerfile/parser and instructions packages:
// directives, comments, continuations and flags exactly as BuildKit handles them.

#include <algorithm>
#include <cctype>
#include <optional>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/log.h"
#include "dockerfile/dockerfile.h"

namespace ocib::dockerfile {

const Flag* Instruction::flag(std::string_view name) const {
  for (const Flag& f : flags) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

namespace {

struct FlagSpec {
  std::string_view name;
  bool is_bool = false;
  bool repeatable = false;
};

// nullptr: the instruction takes no flags (a leading `--x` is part of its arguments).
const std::vector<FlagSpec>* flag_specs(std::string_view kw) {
  static const std::vector<FlagSpec> kFrom = {{"platform"}};
  static const std::vector<FlagSpec> kRun = {{"network"}, {"mount", false, true}, {"security"}};
  static const std::vector<FlagSpec> kCopy = {
      {"from"}, {"chown"}, {"chmod"}, {"link", true}, {"exclude", false, true}, {"parents", true}};
  static const std::vector<FlagSpec> kAdd = {{"chown"},
                                             {"chmod"},
                                             {"link", true},
                                             {"checksum"},
                                             {"keep-git-dir", true},
                                             {"unpack", true},
                                             {"exclude", false, true}};
  static const std::vector<FlagSpec> kHealth = {
      {"interval"}, {"timeout"}, {"start-period"}, {"start-interval"}, {"retries"}};
  if (kw == "FROM") return &kFrom;
  if (kw == "RUN") return &kRun;
  if (kw == "COPY") return &kCopy;
  if (kw == "ADD") return &kAdd;
  if (kw == "HEALTHCHECK") return &kHealth;
  return nullptr;
}

bool is_known(std::string_view kw) {
  static const std::set<std::string_view> kKnown = {
      "FROM", "RUN",        "CMD",         "LABEL",  "EXPOSE",  "ENV",
      "ADD",  "COPY",       "ENTRYPOINT",  "VOLUME", "USER",    "WORKDIR",
      "ARG",  "STOPSIGNAL", "HEALTHCHECK", "SHELL",  "ONBUILD", "MAINTAINER"};
  return kKnown.count(kw) > 0;
}

// BuildKit's reWhitespace: [\t\v\f\r ]+ (plus '\n', which cannot occur inside a line).
bool is_ws(char c) {
  return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r' || c == '\n';
}

std::string_view ltrim(std::string_view s) {
  while (!s.empty() && is_ws(s.front())) s.remove_prefix(1);
  return s;
}
std::string_view trim(std::string_view s) {
  s = ltrim(s);
  while (!s.empty() && is_ws(s.back())) s.remove_suffix(1);
  return s;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}
std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Matches BuildKit's `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$` on a left-trimmed line.
bool match_directive(std::string_view line, std::string* key, std::string* value) {
  line = ltrim(line);
  if (line.empty() || line[0] != '#') return false;
  line = ltrim(line.substr(1));
  size_t i = 0;
  if (i >= line.size() || !std::isalpha(static_cast<unsigned char>(line[i]))) return false;
  while (i < line.size() && std::isalnum(static_cast<unsigned char>(line[i]))) ++i;
  *key = lower(line.substr(0, i));
  line = ltrim(line.substr(i));
  if (line.empty() || line[0] != '=') return false;
  std::string_view v = trim(line.substr(1));
  if (v.empty()) return false;
  *value = std::string(v);
  return true;
}

// A port of BuildKit's parseWords: splits at whitespace outside quotes, keeping quotes and
// escapes in the words.
std::vector<std::string> split_words(std::string_view rest, char escape) {
  enum { kInSpaces, kInWord, kInQuote } phase = kInSpaces;
  std::vector<std::string> words;
  std::string word;
  char quote = 0;
  bool blank_ok = false;
  for (size_t pos = 0; pos <= rest.size(); ++pos) {
    char ch = pos < rest.size() ? rest[pos] : 0;
    if (phase == kInSpaces) {
      if (pos == rest.size()) break;
      if (is_ws(ch)) continue;
      phase = kInWord;
    }
    if (pos == rest.size()) {
      if (blank_ok || !word.empty()) words.push_back(word);
      break;
    }
    if (phase == kInWord) {
      if (is_ws(ch)) {
        phase = kInSpaces;
        if (blank_ok || !word.empty()) words.push_back(word);
        word.clear();
        blank_ok = false;
        continue;
      }
      if (ch == '\'' || ch == '"') {
        quote = ch;
        blank_ok = true;
        phase = kInQuote;
      }
      if (ch == escape) {
        if (pos + 1 == rest.size()) continue;  // an escape at the end of the line is dropped
        word += ch;
        ch = rest[++pos];
      }
      word += ch;
      continue;
    }
    // kInQuote
    if (ch == quote) phase = kInWord;
    if (ch == escape && quote != '\'') {
      if (pos + 1 == rest.size()) {
        phase = kInWord;
        continue;
      }
      word += ch;
      ch = rest[++pos];
    }
    word += ch;
  }
  return words;
}

// A port of BuildKit's extractBuilderFlags: leading `--flag` words (quotes removed, `\` escapes
// with a hard-coded backslash as BuildKit does); returns the remaining text.
std::string extract_flags(std::string_view line, std::vector<std::string>* words,
                          std::vector<size_t>* starts) {
  enum { kInSpaces, kInWord, kInQuote } phase = kInSpaces;
  std::string word;
  char quote = 0;
  bool blank_ok = false;
  for (size_t pos = 0; pos <= line.size(); ++pos) {
    char ch = pos < line.size() ? line[pos] : 0;
    if (phase == kInSpaces) {
      if (pos == line.size()) break;
      if (is_ws(ch)) continue;
      if (ch != '-' || pos + 1 == line.size() || line[pos + 1] != '-') {
        return std::string(line.substr(pos));
      }
      phase = kInWord;
      starts->push_back(pos);
    }
    if (pos == line.size()) {
      if (word != "--" && (blank_ok || !word.empty())) words->push_back(word);
      break;
    }
    if (phase == kInWord) {
      if (is_ws(ch)) {
        phase = kInSpaces;
        if (word == "--") return std::string(line.substr(pos));
        if (blank_ok || !word.empty()) words->push_back(word);
        word.clear();
        blank_ok = false;
        continue;
      }
      if (ch == '\'' || ch == '"') {
        quote = ch;
        blank_ok = true;
        phase = kInQuote;
        continue;
      }
      if (ch == '\\') {
        if (pos + 1 == line.size()) continue;
        ch = line[++pos];
      }
      word += ch;
      continue;
    }
    if (ch == quote) {
      phase = kInWord;
      continue;
    }
    if (ch == '\\') {
      if (pos + 1 == line.size()) {
        phase = kInWord;
        continue;
      }
      ch = line[++pos];
    }
    word += ch;
  }
  return "";
}

// Levenshtein distance (bytes).
size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// The closest candidate within edit distance 2 (first one on ties), "" when none.
std::string suggest(std::string_view word, const std::vector<std::string_view>& candidates) {
  std::string best;
  size_t best_d = 3;
  for (std::string_view c : candidates) {
    if (word.size() >= c.size() + best_d) continue;  // too far apart (and a huge word stays cheap)
    size_t d = edit_distance(word, c);
    if (d < best_d) {
      best_d = d;
      best = std::string(c);
    }
  }
  return best;
}

const std::vector<std::string_view>& known_instructions() {
  static const std::vector<std::string_view> kAll = {
      "FROM", "RUN",        "CMD",         "LABEL",  "EXPOSE",  "ENV",
      "ADD",  "COPY",       "ENTRYPOINT",  "VOLUME", "USER",    "WORKDIR",
      "ARG",  "STOPSIGNAL", "HEALTHCHECK", "SHELL",  "ONBUILD", "MAINTAINER"};
  return kAll;
}

// A piece of the Dockerfile quoted in an error message: escaped and cut (see log::printable).
std::string q(std::string_view s) { return log::printable(s, 100); }

// Instructions whose shell-form arguments may start heredocs (BuildKit's heredocDirectives).
bool can_heredoc(std::string_view kw) { return kw == "RUN" || kw == "COPY" || kw == "ADD"; }

// One physical line: `text` without its terminator (and without one trailing '\r'), `raw` with
// its "\n" or "\r\n" (heredoc bodies keep them).
struct PhysLine {
  std::string_view text;
  std::string_view raw;
};

// Maps offsets of a joined (continued) line back to physical line and column.
struct Segment {
  size_t offset;  // offset in the joined line
  int line;       // 1-based physical line
  int col;        // 1-based column of the segment's first char
};

class Parser {
 public:
  Parser(std::string_view text, const std::string& filename) : text_(text) {
    df_.filename = filename;
  }

  Result<Dockerfile> run();

 private:
  // Messages quote the Dockerfile (through q() where they do): never raw control characters,
  // never unbounded, whatever a quoted piece holds.
  static std::string safe(const std::string& msg) { return log::printable(msg, kMaxMessage); }
  Error err(int line, std::string msg) const {
    return Error::at(SourceLoc{df_.filename, line, 0}, safe(msg));
  }
  // An error located at byte `off` of the current joined line.
  Error err_at(size_t off, int fallback_line, std::string msg) const {
    SourceLoc loc{df_.filename, fallback_line, 0};
    for (const Segment& s : segments_) {
      if (s.offset > off) break;
      loc.line = s.line;
      loc.col = s.col + static_cast<int>(off - s.offset);
    }
    return Error::at(std::move(loc), safe(msg));
  }
  static constexpr size_t kMaxMessage = 1000;
  Status directive(std::string_view line, int line_no);
  Result<Instruction> instruction(std::string_view line, size_t line_off, int start, int end);
  Status parse_args(Instruction& in, size_t rest_off);
  Status parse_flags(Instruction& in, const std::vector<std::string>& raw,
                     const std::vector<size_t>& offs);
  Status set_words(Instruction& in, std::vector<std::string> raw);
  Status name_val(Instruction& in);
  Status maybe_json(Instruction& in, bool required);
  Status read_heredocs(Instruction& in, const std::string& line, size_t* next);

  std::string_view text_;
  Dockerfile df_;
  bool directives_done_ = false;
  std::set<std::string> seen_directives_;
  std::vector<PhysLine> lines_;
  std::vector<Segment> segments_;  // of the instruction being parsed
};

Status Parser::directive(std::string_view line, int line_no) {
  if (directives_done_) return ok_status();
  std::string key, value;
  if (!match_directive(line, &key, &value) ||
      (key != "escape" && key != "syntax" && key != "check")) {
    directives_done_ = true;
    return ok_status();
  }
  if (!seen_directives_.insert(key).second) {
    return err(line_no, "only one " + key + " parser directive can be used");
  }
  if (key == "escape") {
    if (value != "`" && value != "\\") {
      return err(line_no, "invalid escape token '" + q(value) + "' does not match ` or \\");
    }
    df_.escape = value[0];
  } else if (key == "syntax") {
    df_.syntax = value;
  } else {
    df_.check = value;
  }
  return ok_status();
}

// BuildKit: after an instruction that can contain heredocs, each heredoc named on its line
// (in order) takes the following physical lines up to its terminator.
Status Parser::read_heredocs(Instruction& in, const std::string& line, size_t* next) {
  if (line.find("<<") == std::string::npos) return ok_status();
  std::string_view kw = in.keyword;
  if (kw == "ONBUILD") {
    std::string_view r = in.rest;
    size_t ws = 0;
    while (ws < r.size() && !is_ws(r[ws])) ++ws;
    std::string trigger = upper(r.substr(0, ws));
    if (!can_heredoc(trigger)) return ok_status();
    std::string_view args = ltrim(r.substr(ws));
    if (!args.empty() && args[0] == '[') {
      // A JSON trigger takes no heredocs (checked as BuildKit does, on the trigger's args).
      Instruction tmp;
      tmp.keyword = trigger;
      tmp.rest = std::string(args);
      OCIB_TRY(maybe_json(tmp, false));
      if (tmp.json) return ok_status();
    }
  } else if (!can_heredoc(kw) || in.json) {
    return ok_status();
  }
  // BuildKit lexes the whole line with a backslash escape, whatever the escape directive.
  for (const std::string& w : split_words(line, '\\')) {
    std::optional<Heredoc> h = parse_heredoc_word(w);
    if (!h) continue;
    bool terminated = false;
    while (*next < lines_.size()) {
      std::string_view raw = lines_[(*next)++].raw;
      std::string_view term = raw;
      while (!term.empty() && (term.back() == '\n' || term.back() == '\r')) term.remove_suffix(1);
      if (h->chomp) {
        while (!term.empty() && term.front() == '\t') term.remove_prefix(1);
      }
      if (term == h->name) {
        terminated = true;
        break;
      }
      h->content += raw;
    }
    if (!terminated) return err(in.line, "unterminated heredoc");
    in.heredocs.push_back(std::move(*h));
  }
  in.end_line = static_cast<int>(*next);
  return ok_status();
}

Result<Dockerfile> Parser::run() {
  std::string_view t = text_;
  if (t.substr(0, 3) == "\xEF\xBB\xBF") t.remove_prefix(3);
  while (!t.empty()) {
    size_t nl = t.find('\n');
    std::string_view raw = t.substr(0, nl == std::string_view::npos ? t.size() : nl + 1);
    std::string_view l = t.substr(0, nl);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    lines_.push_back(PhysLine{l, raw});
    if (nl == std::string_view::npos) break;
    t.remove_prefix(nl + 1);
  }

  auto is_comment = [](std::string_view l) {
    l = ltrim(l);
    return !l.empty() && l[0] == '#';
  };
  // BuildKit's lineContinuationRegex: escape followed by [ \t]* at the end of the line.
  auto trim_continuation = [this](std::string_view l, bool* end_of_line) {
    size_t e = l.size();
    while (e > 0 && (l[e - 1] == ' ' || l[e - 1] == '\t')) --e;
    if (e > 0 && l[e - 1] == df_.escape) {
      *end_of_line = false;
      return std::string(l.substr(0, e - 1));
    }
    *end_of_line = true;
    return std::string(l);
  };

  bool any = false;
  size_t i = 0;
  while (i < lines_.size()) {
    std::string_view first = ltrim(lines_[i].text);
    OCIB_TRY(directive(first, static_cast<int>(i) + 1));
    if (!first.empty() && first[0] == '#') first = {};
    segments_.clear();
    segments_.push_back(
        Segment{0, static_cast<int>(i) + 1,
                static_cast<int>(first.empty() ? 1 : first.data() - lines_[i].text.data() + 1)});
    ++i;
    int start = static_cast<int>(i);
    bool eol = true;
    std::string line = trim_continuation(first, &eol);
    if (eol && line.empty()) continue;
    while (!eol && i < lines_.size()) {
      std::string_view l = lines_[i++].text;
      OCIB_TRY(directive(l, static_cast<int>(i)));
      if (is_comment(l) || ltrim(l).empty()) continue;
      segments_.push_back(Segment{line.size(), static_cast<int>(i), 1});
      line += trim_continuation(l, &eol);
    }
    int end = static_cast<int>(i);
    OCIB_ASSIGN_OR_RETURN(Instruction in, instruction(line, 0, start, end));
    OCIB_TRY(read_heredocs(in, line, &i));
    any = true;
    if (in.keyword == "FROM") {
      Stage st;
      st.index = static_cast<int>(df_.stages.size());
      const std::vector<std::string>& w = in.words;
      if (w.size() == 3 && lower(w[1]) == "as") {
        st.name = lower(w[2]);
        bool valid = !st.name.empty() && st.name[0] >= 'a' && st.name[0] <= 'z';
        for (char c : st.name) {
          valid = valid &&
                  (std::islower(static_cast<unsigned char>(c)) ||
                   std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.');
        }
        if (!valid) {
          return err(start, "invalid name for build stage: \"" + q(w[2]) +
                                "\", name can't start with a number or contain symbols");
        }
      } else if (w.size() != 1) {
        return err(start, "FROM requires either one or three arguments");
      }
      st.base = in.raw_words[0];
      if (const Flag* p = in.flag("platform")) st.platform = p->value;
      st.from = std::move(in);
      df_.stages.push_back(std::move(st));
    } else if (!df_.stages.empty()) {
      df_.stages.back().body.push_back(std::move(in));
    } else if (in.keyword == "ARG") {
      df_.meta_args.push_back(std::move(in));
    } else {
      return err(start, "no build stage in current context");
    }
  }
  if (!any) return err(0, "file with no instructions");
  if (df_.stages.empty()) return err(0, "dockerfile contains no stages to build");
  return std::move(df_);
}

// `line` starts at offset `line_off` of the joined line (for error columns).
Result<Instruction> Parser::instruction(std::string_view line, size_t line_off, int start,
                                        int end) {
  Instruction in;
  in.line = start;
  in.end_line = end;
  std::string_view l = trim(line);
  size_t l_off = line_off + static_cast<size_t>(l.data() - line.data());
  in.original = std::string(l);
  size_t ws = 0;
  while (ws < l.size() && !is_ws(l[ws])) ++ws;
  in.keyword = upper(l.substr(0, ws));
  if (!is_known(in.keyword)) {
    std::string msg = "unknown instruction: " + q(in.keyword);
    std::string s = suggest(in.keyword, known_instructions());
    if (!s.empty()) msg += " (did you mean " + s + "?)";
    return err(start, msg);
  }
  std::string_view args = ltrim(l.substr(ws));
  size_t args_off = l_off + static_cast<size_t>(args.data() - l.data());
  size_t rest_off = args_off;
  if (flag_specs(in.keyword) != nullptr) {
    std::vector<std::string> raw_flags;
    std::vector<size_t> starts;
    std::string rest = extract_flags(args, &raw_flags, &starts);
    std::string_view trimmed = trim(rest);
    in.rest = std::string(trimmed);
    // The rest is a suffix of args (extract_flags returns line.substr(pos) or "").
    rest_off = args_off + (args.size() - rest.size()) +
               static_cast<size_t>(trimmed.data() - rest.data());
    std::vector<size_t> offs;
    for (size_t s : starts) offs.push_back(args_off + s);
    OCIB_TRY(parse_flags(in, raw_flags, offs));
  } else {
    in.rest = std::string(args);
  }
  OCIB_TRY(parse_args(in, rest_off));
  return in;
}

Status Parser::parse_flags(Instruction& in, const std::vector<std::string>& raw,
                           const std::vector<size_t>& offs) {
  const std::vector<FlagSpec>& specs = *flag_specs(in.keyword);
  std::set<std::string> seen;
  for (size_t k = 0; k < raw.size(); ++k) {
    const std::string& r = raw[k];
    size_t off = k < offs.size() ? offs[k] : 0;
    // extract_flags only returns words starting with "--".
    std::string name = r.substr(2);
    std::string value;
    bool has_value = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
      has_value = true;
    }
    const FlagSpec* spec = nullptr;
    for (const FlagSpec& s : specs) {
      if (s.name == name) spec = &s;
    }
    if (spec == nullptr) {
      std::string msg = "unknown flag: --" + q(name) + " for " + in.keyword;
      std::vector<std::string_view> names;
      for (const FlagSpec& s : specs) names.push_back(s.name);
      std::string s = suggest(name, names);
      if (!s.empty()) msg += " (did you mean " + s + "?)";  // BuildKit's words
      return err_at(off, in.line, msg);
    }
    if (!spec->repeatable && !seen.insert(name).second) {
      return err_at(off, in.line, "duplicate flag specified: --" + q(name));
    }
    if (spec->is_bool) {
      if (has_value && value.empty()) {
        return err_at(off, in.line, "missing a value on flag: --" + q(name));
      }
      std::string v = lower(value);
      if (v != "" && v != "true" && v != "false") {
        return err_at(off, in.line,
                      "expecting boolean value for flag --" + q(name) + ", not: " + q(value));
      }
    } else if (!has_value) {
      return err_at(off, in.line, "missing a value on flag: --" + q(name));
    }
    in.flags.push_back(Flag{name, value});
  }
  return ok_status();
}

Status Parser::set_words(Instruction& in, std::vector<std::string> raw) {
  in.words.clear();
  for (const std::string& w : raw) {
    auto u = unquote(w, df_.escape);
    if (!u.ok()) return err(in.line, u.error().message());
    in.words.push_back(std::move(*u));
  }
  in.raw_words = std::move(raw);
  return ok_status();
}

// ENV and LABEL: BuildKit's parseNameVal.
Status Parser::name_val(Instruction& in) {
  std::vector<std::string> words = split_words(in.rest, df_.escape);
  if (words.empty()) return err(in.line, in.keyword + " requires at least one argument");
  if (words[0].find('=') == std::string::npos) {
    std::string_view rest = in.rest;
    size_t ws = 0;
    while (ws < rest.size() && !is_ws(rest[ws])) ++ws;
    std::string_view value = ltrim(rest.substr(ws));
    if (value.empty()) return err(in.line, in.keyword + " must have two arguments");
    in.raw_kvs.emplace_back(std::string(rest.substr(0, ws)), std::string(value));
  } else {
    for (const std::string& w : words) {
      size_t eq = w.find('=');
      if (eq == std::string::npos) {
        return err(in.line,
                   "Syntax error - can't find = in \"" + q(w) + "\". Must be of the form: name=value");
      }
      in.raw_kvs.emplace_back(w.substr(0, eq), w.substr(eq + 1));
    }
  }
  for (const auto& [k, v] : in.raw_kvs) {
    auto key = unquote(k, df_.escape);
    if (!key.ok()) return err(in.line, key.error().message());
    if (key->empty()) return err(in.line, in.keyword + " names can not be blank");
    auto value = unquote(*v, df_.escape);
    if (!value.ok()) return err(in.line, value.error().message());
    in.kvs.emplace_back(std::move(*key), std::move(*value));
  }
  return ok_status();
}

// RUN/CMD/ENTRYPOINT/SHELL/COPY/ADD/VOLUME: a JSON array of strings is the exec form; any other
// text is the shell form, except an array with non-string elements, which is an error.
Status Parser::maybe_json(Instruction& in, bool required) {
  std::string_view r = ltrim(in.rest);
  if (!r.empty() && r[0] == '[') {
    // Go's JSON reader (BuildKit's) takes invalid UTF-8 as U+FFFD; nlohmann refuses it.
    nlohmann::json j = nlohmann::json::parse(utf8(r), nullptr, false);
    if (!j.is_discarded() && j.is_array()) {
      std::vector<std::string> out;
      for (const auto& e : j) {
        if (!e.is_string()) {
          return err(in.line,
                     "when using JSON array syntax, arrays must be comprised of strings only");
        }
        out.push_back(e.get<std::string>());
      }
      in.json = std::move(out);
      return ok_status();
    }
  }
  if (required) return err(in.line, in.keyword + " requires the arguments to be in JSON form");
  return ok_status();
}

Status Parser::parse_args(Instruction& in, size_t rest_off) {
  const std::string& kw = in.keyword;
  auto need_args = [&]() -> Status {
    if (in.rest.empty()) return err(in.line, kw + " requires at least one argument");
    return ok_status();
  };
  if (kw == "FROM") {
    if (in.rest.empty()) return err(in.line, "FROM requires either one or three arguments");
    return set_words(in, split_words(in.rest, df_.escape));
  }
  if (kw == "RUN" || kw == "CMD" || kw == "ENTRYPOINT") {
    if (kw == "RUN") OCIB_TRY(need_args());
    OCIB_TRY(maybe_json(in, false));
    return ok_status();
  }
  if (kw == "SHELL") {
    OCIB_TRY(need_args());
    return maybe_json(in, true);
  }
  if (kw == "COPY" || kw == "ADD") {
    OCIB_TRY(maybe_json(in, false));
    if (!in.json) {
      OCIB_TRY(set_words(in, split_words(in.rest, df_.escape)));
      if (in.raw_words.size() >= 2 && parse_heredoc_word(in.raw_words.back())) {
        return err(in.line, kw + " cannot accept a heredoc as a destination");
      }
    }
    size_t n = in.json ? in.json->size() : in.words.size();
    if (n < 2) {
      return err(in.line, kw + " requires at least two arguments, but only one was provided. "
                               "Destination could not be determined.");
    }
    return ok_status();
  }
  if (kw == "ENV" || kw == "LABEL") return name_val(in);
  if (kw == "ARG") {
    std::vector<std::string> words = split_words(in.rest, df_.escape);
    if (words.empty()) return err(in.line, "ARG requires at least one argument");
    for (const std::string& w : words) {
      size_t eq = w.find('=');
      std::optional<std::string> raw_value;
      if (eq != std::string::npos) raw_value = w.substr(eq + 1);
      in.raw_kvs.emplace_back(w.substr(0, eq), raw_value);
      auto key = unquote(in.raw_kvs.back().first, df_.escape);
      if (!key.ok()) return err(in.line, key.error().message());
      if (key->empty()) return err(in.line, "ARG names can not be blank");
      std::optional<std::string> value;
      if (raw_value) {
        auto v = unquote(*raw_value, df_.escape);
        if (!v.ok()) return err(in.line, v.error().message());
        value = std::move(*v);
      }
      in.kvs.emplace_back(std::move(*key), std::move(value));
    }
    return ok_status();
  }
  if (kw == "EXPOSE" || kw == "VOLUME") {
    OCIB_TRY(need_args());
    if (kw == "VOLUME") OCIB_TRY(maybe_json(in, false));
    if (!in.json) OCIB_TRY(set_words(in, split_words(in.rest, df_.escape)));
    return ok_status();
  }
  if (kw == "USER" || kw == "WORKDIR" || kw == "STOPSIGNAL" || kw == "MAINTAINER") {
    if (in.rest.empty()) return err(in.line, kw + " requires exactly one argument");
    return set_words(in, {in.rest});
  }
  if (kw == "HEALTHCHECK") {
    OCIB_TRY(need_args());
    std::string_view r = in.rest;
    size_t ws = 0;
    while (ws < r.size() && !is_ws(r[ws])) ++ws;
    std::string type = upper(r.substr(0, ws));
    std::string cmd(ltrim(r.substr(ws)));
    if (type == "NONE") {
      if (!cmd.empty()) return err(in.line, "HEALTHCHECK NONE takes no arguments");
      in.words = in.raw_words = {"NONE"};
      return ok_status();
    }
    if (type != "CMD") {
      return err(in.line, "Unknown type \"" + q(type) + "\" in HEALTHCHECK (try CMD)");
    }
    if (cmd.empty()) return err(in.line, "Missing command after HEALTHCHECK CMD");
    Instruction tmp;
    tmp.line = in.line;
    tmp.keyword = kw;
    tmp.rest = cmd;
    OCIB_TRY(maybe_json(tmp, false));
    in.json = std::move(tmp.json);
    in.words = in.raw_words = {"CMD"};
    if (!in.json) {
      in.words.push_back(cmd);
      in.raw_words.push_back(cmd);
    }
    return ok_status();
  }
  if (kw == "ONBUILD") {
    OCIB_TRY(need_args());
    std::string_view r = in.rest;
    size_t ws = 0;
    while (ws < r.size() && !is_ws(r[ws])) ++ws;
    std::string trigger = upper(r.substr(0, ws));
    if (trigger == "ONBUILD") {
      return err(in.line, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
    }
    if (trigger == "FROM" || trigger == "MAINTAINER") {
      return err(in.line, q(trigger) + " isn't allowed as an ONBUILD trigger");
    }
    // Validates the trigger now, as Docker does; the build re-parses `rest` when needed.
    OCIB_ASSIGN_OR_RETURN(Instruction sub, instruction(in.rest, rest_off, in.line, in.end_line));
    (void)sub;
    return ok_status();
  }
  return ok_status();
}

}  // namespace

std::optional<Heredoc> parse_heredoc_word(std::string_view word) {
  // BuildKit's reHeredoc: ^(\d*)<<(-?)([^<]*)$
  size_t i = 0;
  while (i < word.size() && word[i] >= '0' && word[i] <= '9') ++i;
  if (word.substr(i, 2) != "<<") return std::nullopt;
  i += 2;
  Heredoc h;
  h.chomp = i < word.size() && word[i] == '-';
  if (h.chomp) ++i;
  std::string_view rest = word.substr(i);
  if (rest.empty() || rest.find('<') != std::string_view::npos) return std::nullopt;
  // The name must be a single shell word; quotes around any part of it disable expansion.
  if (split_words(rest, '\\').size() != 1) return std::nullopt;
  auto name = unquote(rest, '\\');
  if (!name.ok()) return std::nullopt;
  h.name = std::move(*name);
  h.expand = true;
  for (size_t k = 0; k < rest.size(); ++k) {
    if (rest[k] == '\\') {
      ++k;
    } else if (rest[k] == '\'' || rest[k] == '"') {
      h.expand = false;
      break;
    }
  }
  return h;
}

std::string Heredoc::data() const {
  if (!chomp) return content;
  std::string out;
  bool bol = true;
  for (char c : content) {
    if (bol && c == '\t') continue;
    bol = c == '\n';
    out += c;
  }
  return out;
}

Result<Dockerfile> parse(std::string_view text, const std::string& filename) {
  return Parser(text, filename).run();
}

}  // namespace ocib::dockerfile
