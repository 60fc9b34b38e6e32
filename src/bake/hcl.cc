// The HCL subset of files.h: a lexer, a recursive-descent parser into Body/Expr, and the
// evaluator shared with JSON files (variables, interpolation, matrix).

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <map>
#include <set>

#include "bake/files.h"
#include "base/spec.h"

namespace ocib::bake {

using nlohmann::json;

Env process_env() {
  return [](const std::string& k) -> std::optional<std::string> {
    const char* v = std::getenv(k.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

namespace {

constexpr int kMaxDepth = 64;  // nesting of expressions and blocks

enum class Tok { kEof, kIdent, kNumber, kString, kHeredoc, kPunct };

struct Token {
  Tok kind = Tok::kEof;
  std::string text;  // ident, number text, punct; kString/kHeredoc: raw content (escapes not yet applied)
  SourceLoc loc;
  int content_line = 0, content_col = 0;  // where a string's content starts
};

class Lexer {
 public:
  Lexer(const std::string& text, const std::string& path) : s_(text), path_(path) {}

  Result<std::vector<Token>> run() {
    std::vector<Token> out;
    for (;;) {
      OCIB_TRY(skip_space());
      Token t;
      t.loc = {path_, line_, col_};
      if (i_ >= s_.size()) {
        out.push_back(t);
        return out;
      }
      char c = s_[i_];
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t b = i_;
        while (i_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '_' || s_[i_] == '-')) adv();
        t.kind = Tok::kIdent;
        t.text = s_.substr(b, i_ - b);
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        size_t b = i_;
        while (i_ < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[i_])) || s_[i_] == '.' || s_[i_] == 'e' ||
                                  s_[i_] == 'E'))
          adv();
        t.kind = Tok::kNumber;
        t.text = s_.substr(b, i_ - b);
      } else if (c == '"') {
        adv();
        t.kind = Tok::kString;
        t.content_line = line_;
        t.content_col = col_;
        OCIB_ASSIGN_OR_RETURN(t.text, quoted(t.loc));
      } else if (c == '<' && i_ + 1 < s_.size() && s_[i_ + 1] == '<') {
        OCIB_TRY(heredoc(t));
      } else {
        static const char* kTwo[] = {"==", "!=", "&&", "||"};
        t.kind = Tok::kPunct;
        for (const char* two : kTwo)
          if (s_.compare(i_, 2, two) == 0) t.text = two;
        if (t.text.empty()) {
          if (std::string("{}[]()=,:?!.").find(c) == std::string::npos)
            return Error::at(t.loc, std::string("unexpected character '") + (std::isprint(static_cast<unsigned char>(c)) ? std::string(1, c) : "\\x" + hex(c)) + "'");
          t.text = std::string(1, c);
        }
        for (size_t k = 0; k < t.text.size(); ++k) adv();
      }
      out.push_back(std::move(t));
    }
  }

 private:
  static std::string hex(char c) {
    const char* d = "0123456789abcdef";
    unsigned char u = static_cast<unsigned char>(c);
    return {d[u >> 4], d[u & 15]};
  }
  void adv() {
    if (s_[i_] == '\n') {
      ++line_;
      col_ = 1;
    } else {
      ++col_;
    }
    ++i_;
  }
  Status skip_space() {
    while (i_ < s_.size()) {
      char c = s_[i_];
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
        adv();
      } else if (c == '#' || (c == '/' && i_ + 1 < s_.size() && s_[i_ + 1] == '/')) {
        while (i_ < s_.size() && s_[i_] != '\n') adv();
      } else if (c == '/' && i_ + 1 < s_.size() && s_[i_ + 1] == '*') {
        SourceLoc at{path_, line_, col_};
        adv();
        adv();
        while (i_ + 1 < s_.size() && !(s_[i_] == '*' && s_[i_ + 1] == '/')) adv();
        if (i_ + 1 >= s_.size()) return Error::at(at, "unterminated /* comment");
        adv();
        adv();
      } else {
        break;
      }
    }
    return {};
  }
  // The raw content of a quoted string, up to its closing quote (a `${...}` may hold quotes).
  Result<std::string> quoted(const SourceLoc& at) {
    size_t b = i_;
    int depth = 0;
    bool in_inner = false;  // inside a quoted string within ${ }
    while (i_ < s_.size()) {
      char c = s_[i_];
      if (c == '\n' && depth == 0) return Error::at(at, "unterminated string (a quoted string ends on its line)");
      if (c == '\\' && i_ + 1 < s_.size()) {
        adv();
        adv();
        continue;
      }
      if (in_inner) {
        if (c == '"') in_inner = false;
        adv();
        continue;
      }
      if (depth == 0 && c == '"') {
        std::string raw = s_.substr(b, i_ - b);
        adv();
        return raw;
      }
      if ((c == '$' || c == '%') && i_ + 1 < s_.size() && s_[i_ + 1] == '{') {
        if (i_ > b && s_[i_ - 1] == c && depth == 0) {  // $${ is a literal
          adv();
          continue;
        }
        ++depth;
        adv();
        adv();
        continue;
      }
      if (depth > 0 && c == '{') ++depth;
      if (depth > 0 && c == '}') --depth;
      if (depth > 0 && c == '"') in_inner = true;
      adv();
    }
    return Error::at(at, "unterminated string");
  }
  Status heredoc(Token& t) {
    adv();
    adv();
    bool indent = false;
    if (i_ < s_.size() && s_[i_] == '-') {
      indent = true;
      adv();
    }
    size_t b = i_;
    while (i_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '_')) adv();
    std::string delim = s_.substr(b, i_ - b);
    if (delim.empty()) return Error::at(t.loc, "a heredoc needs a delimiter word after <<");
    while (i_ < s_.size() && s_[i_] != '\n') {
      if (s_[i_] != ' ' && s_[i_] != '\t' && s_[i_] != '\r') return Error::at(t.loc, "text after the heredoc's <<" + delim);
      adv();
    }
    if (i_ >= s_.size()) return Error::at(t.loc, "heredoc <<" + delim + " has no end");
    adv();
    t.kind = Tok::kHeredoc;
    t.content_line = line_;
    t.content_col = 1;
    std::vector<std::string> lines;
    for (;;) {
      if (i_ >= s_.size()) return Error::at(t.loc, "heredoc <<" + delim + " has no closing " + delim + " line");
      size_t e = s_.find('\n', i_);
      if (e == std::string::npos) e = s_.size();
      std::string line = s_.substr(i_, e - i_);
      while (i_ < e) adv();
      if (i_ < s_.size()) adv();
      std::string trimmed = line;
      while (!trimmed.empty() && (trimmed.back() == '\r' || trimmed.back() == ' ' || trimmed.back() == '\t')) trimmed.pop_back();
      size_t lead = trimmed.find_first_not_of(" \t");
      if (lead != std::string::npos && trimmed.substr(lead) == delim) break;
      lines.push_back(line);
    }
    if (indent) {  // <<-: the least indentation of the non-blank lines is removed
      size_t least = std::string::npos;
      for (const auto& l : lines)
        if (l.find_first_not_of(" \t\r") != std::string::npos) least = std::min(least, l.find_first_not_of(" \t"));
      if (least == std::string::npos) least = 0;
      for (auto& l : lines) l = l.size() >= least ? l.substr(least) : std::string();
    }
    t.text.clear();
    for (const auto& l : lines) t.text += l + "\n";
    return {};
  }

  std::string s_;
  std::string path_;
  size_t i_ = 0;
  int line_ = 1, col_ = 1;
};

ExprPtr literal(json v, SourceLoc loc) {
  auto e = std::make_shared<Expr>();
  e->literal = std::move(v);
  e->loc = std::move(loc);
  return e;
}

class Parser {
 public:
  Parser(std::vector<Token> toks, std::string path) : t_(std::move(toks)), path_(std::move(path)) {}

  Result<Body> body(bool top, int depth) {
    if (depth > kMaxDepth) return Error::at(peek().loc, "blocks nested too deeply");
    Body b;
    for (;;) {
      const Token& t = peek();
      if (t.kind == Tok::kEof) {
        if (!top) return Error::at(t.loc, "unexpected end of file: a block is not closed with }");
        return b;
      }
      if (t.kind == Tok::kPunct && t.text == "}") {
        if (top) return Error::at(t.loc, "unexpected }");
        return b;
      }
      if (t.kind != Tok::kIdent) return Error::at(t.loc, "expected an attribute or block name, found " + describe(t));
      Token name = next();
      if (is("=") || is(":")) {
        next();
        OCIB_ASSIGN_OR_RETURN(ExprPtr v, expr(0));
        for (const auto& a : b.attrs)
          if (a.name == name.text)
            return Error::at(name.loc, "attribute \"" + name.text + "\" is set twice (first at line " + std::to_string(a.loc.line) + ")");
        b.attrs.push_back({name.text, v, name.loc});
        continue;
      }
      Block blk;
      blk.type = name.text;
      blk.loc = name.loc;
      while (peek().kind == Tok::kString || peek().kind == Tok::kIdent) {
        Token l = next();
        if (l.kind == Tok::kString && l.text.find("${") != std::string::npos)
          return Error::at(l.loc, "a block label cannot be a template");
        blk.labels.push_back(l.kind == Tok::kString ? unescape_plain(l.text) : l.text);
      }
      if (!is("{")) return Error::at(peek().loc, "expected = or { after \"" + name.text + "\", found " + describe(peek()));
      next();
      OCIB_ASSIGN_OR_RETURN(blk.body, body(false, depth + 1));
      next();  // }
      b.blocks.push_back(std::move(blk));
    }
  }

  Result<ExprPtr> expr(int depth) {
    if (depth > kMaxDepth) return Error::at(peek().loc, "expression nested too deeply");
    OCIB_ASSIGN_OR_RETURN(ExprPtr c, binary(0, depth));
    if (!is("?")) return c;
    SourceLoc at = next().loc;
    OCIB_ASSIGN_OR_RETURN(ExprPtr a, expr(depth + 1));
    if (!is(":")) return Error::at(peek().loc, "expected : in a conditional, found " + describe(peek()));
    next();
    OCIB_ASSIGN_OR_RETURN(ExprPtr b, expr(depth + 1));
    auto e = std::make_shared<Expr>();
    e->op = Expr::Op::kCond;
    e->items = {c, a, b};
    e->loc = at;
    return ExprPtr(e);
  }

  const Token& peek() const { return t_[std::min(p_, t_.size() - 1)]; }
  bool at_end() const { return peek().kind == Tok::kEof; }

 private:
  // Precedence: || (0), && (1), == != (2).
  Result<ExprPtr> binary(int level, int depth) {
    if (level > 2) return unary(depth);
    OCIB_ASSIGN_OR_RETURN(ExprPtr lhs, binary(level + 1, depth));
    for (;;) {
      const char* ops[3][2] = {{"||", nullptr}, {"&&", nullptr}, {"==", "!="}};
      std::string op;
      for (const char* o : ops[level])
        if (o && is(o)) op = o;
      if (op.empty()) return lhs;
      SourceLoc at = next().loc;
      OCIB_ASSIGN_OR_RETURN(ExprPtr rhs, binary(level + 1, depth + 1));
      auto e = std::make_shared<Expr>();
      e->op = Expr::Op::kBinary;
      e->name = op;
      e->items = {lhs, rhs};
      e->loc = at;
      lhs = e;
    }
  }
  Result<ExprPtr> unary(int depth) {
    if (depth > kMaxDepth) return Error::at(peek().loc, "expression nested too deeply");
    if (is("!")) {
      SourceLoc at = next().loc;
      OCIB_ASSIGN_OR_RETURN(ExprPtr x, unary(depth + 1));
      auto e = std::make_shared<Expr>();
      e->op = Expr::Op::kNot;
      e->items = {x};
      e->loc = at;
      return ExprPtr(e);
    }
    OCIB_ASSIGN_OR_RETURN(ExprPtr p, primary(depth));
    if (is(".") || is("["))
      return Error::at(peek().loc, "attribute and index traversals (a.b, a[0]) are not supported by ocib's HCL subset");
    return p;
  }
  Result<ExprPtr> primary(int depth) {
    const Token& t = peek();
    if (t.kind == Tok::kNumber) {
      Token n = next();
      char* end = nullptr;
      double v = std::strtod(n.text.c_str(), &end);
      if (!end || *end) return Error::at(n.loc, "invalid number \"" + n.text + "\"");
      if (n.text.find_first_of(".eE") == std::string::npos && n.text.size() < 18)
        return literal(json(std::strtoll(n.text.c_str(), nullptr, 10)), n.loc);
      return literal(json(v), n.loc);
    }
    if (t.kind == Tok::kString || t.kind == Tok::kHeredoc) {
      Token s = next();
      return template_expr(s.text, {path_, s.content_line, s.content_col}, s.kind == Tok::kHeredoc, depth);
    }
    if (t.kind == Tok::kIdent) {
      Token id = next();
      if (id.text == "true" || id.text == "false") return literal(json(id.text == "true"), id.loc);
      if (id.text == "null") return literal(json(nullptr), id.loc);
      if (id.text == "for") return Error::at(id.loc, "for expressions are not supported by ocib's HCL subset");
      auto e = std::make_shared<Expr>();
      e->loc = id.loc;
      e->name = id.text;
      if (is("(")) {
        next();
        e->op = Expr::Op::kCall;
        while (!is(")")) {
          OCIB_ASSIGN_OR_RETURN(ExprPtr a, expr(depth + 1));
          e->items.push_back(a);
          if (is(",")) next();
          else if (!is(")")) return Error::at(peek().loc, "expected , or ) in the call of " + id.text + ", found " + describe(peek()));
        }
        next();
        return ExprPtr(e);
      }
      e->op = Expr::Op::kVar;
      return ExprPtr(e);
    }
    if (is("(")) {
      next();
      OCIB_ASSIGN_OR_RETURN(ExprPtr x, expr(depth + 1));
      if (!is(")")) return Error::at(peek().loc, "expected ), found " + describe(peek()));
      next();
      return x;
    }
    if (is("[")) {
      auto e = std::make_shared<Expr>();
      e->op = Expr::Op::kList;
      e->loc = next().loc;
      while (!is("]")) {
        if (at_end()) return Error::at(e->loc, "list not closed with ]");
        OCIB_ASSIGN_OR_RETURN(ExprPtr x, expr(depth + 1));
        e->items.push_back(x);
        if (is(",")) next();
        else if (!is("]")) return Error::at(peek().loc, "expected , or ] in a list, found " + describe(peek()));
      }
      next();
      return ExprPtr(e);
    }
    if (is("{")) {
      auto e = std::make_shared<Expr>();
      e->op = Expr::Op::kObject;
      e->loc = next().loc;
      while (!is("}")) {
        const Token& k = peek();
        if (k.kind != Tok::kIdent && k.kind != Tok::kString)
          return Error::at(k.loc, "expected a key in an object, found " + describe(k));
        Token key = next();
        if (key.kind == Tok::kString && key.text.find("${") != std::string::npos)
          return Error::at(key.loc, "object keys cannot be templates in ocib's HCL subset");
        if (!is("=") && !is(":")) return Error::at(peek().loc, "expected = or : after the key \"" + key.text + "\", found " + describe(peek()));
        next();
        OCIB_ASSIGN_OR_RETURN(ExprPtr v, expr(depth + 1));
        e->fields.push_back({key.kind == Tok::kString ? unescape_plain(key.text) : key.text, v});
        if (is(",")) next();
      }
      next();
      return ExprPtr(e);
    }
    return Error::at(t.loc, "expected an expression, found " + describe(t));
  }

 public:
  // A quoted string's or heredoc's content: literal text and ${EXPR} parts.
  Result<ExprPtr> template_expr(const std::string& raw, SourceLoc loc, bool heredoc, int depth) {
    auto e = std::make_shared<Expr>();
    e->op = Expr::Op::kTemplate;
    e->loc = loc;
    std::string lit;
    int line = loc.line, col = loc.col;
    auto flush = [&] {
      if (!lit.empty()) e->items.push_back(literal(json(lit), loc));
      lit.clear();
    };
    for (size_t i = 0; i < raw.size();) {
      char c = raw[i];
      SourceLoc here{path_, line, col};
      auto step = [&](size_t n) {
        for (size_t k = 0; k < n && i < raw.size(); ++k, ++i) {
          if (raw[i] == '\n') {
            ++line;
            col = 1;
          } else {
            ++col;
          }
        }
      };
      if (!heredoc && c == '\\') {
        if (i + 1 >= raw.size()) return Error::at(here, "a string ends in a lone backslash");
        char n = raw[i + 1];
        if (n == 'n') lit += '\n';
        else if (n == 'r') lit += '\r';
        else if (n == 't') lit += '\t';
        else if (n == '"') lit += '"';
        else if (n == '\\') lit += '\\';
        else if (n == 'u' && i + 5 < raw.size() + 0 && raw.size() >= i + 6) {
          unsigned cp = 0;
          for (size_t k = i + 2; k < i + 6; ++k) {
            if (!std::isxdigit(static_cast<unsigned char>(raw[k]))) return Error::at(here, "invalid \\u escape");
            cp = cp * 16 + static_cast<unsigned>(std::isdigit(static_cast<unsigned char>(raw[k])) ? raw[k] - '0' : (std::tolower(raw[k]) - 'a' + 10));
          }
          if (cp < 0x80) lit += static_cast<char>(cp);
          else if (cp < 0x800) {
            lit += static_cast<char>(0xC0 | (cp >> 6));
            lit += static_cast<char>(0x80 | (cp & 0x3F));
          } else {
            lit += static_cast<char>(0xE0 | (cp >> 12));
            lit += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            lit += static_cast<char>(0x80 | (cp & 0x3F));
          }
          step(6);
          continue;
        } else {
          return Error::at(here, std::string("invalid escape \\") + n + " in a string");
        }
        step(2);
        continue;
      }
      if ((c == '$' || c == '%') && i + 2 < raw.size() + 1 && i + 1 < raw.size() && raw[i + 1] == c && i + 2 < raw.size() && raw[i + 2] == '{') {
        lit += c;
        lit += '{';
        step(3);
        continue;
      }
      if (c == '%' && i + 1 < raw.size() && raw[i + 1] == '{')
        return Error::at(here, "template directives (%{ }) are not supported by ocib's HCL subset");
      if (c == '$' && i + 1 < raw.size() && raw[i + 1] == '{') {
        // Find the matching } (nested braces and quoted strings inside).
        size_t j = i + 2;
        int d = 1;
        bool q = false;
        for (; j < raw.size(); ++j) {
          char x = raw[j];
          if (q) {
            if (x == '\\') ++j;
            else if (x == '"') q = false;
            continue;
          }
          if (x == '"') q = true;
          else if (x == '{') ++d;
          else if (x == '}' && --d == 0) break;
        }
        if (j >= raw.size()) return Error::at(here, "${ not closed with }");
        std::string inner = raw.substr(i + 2, j - i - 2);
        flush();
        // The inner expression is lexed on its own, its positions offset to where it stands.
        std::string padded = std::string(static_cast<size_t>(std::max(col, 0) + 1), ' ');
        Lexer lx(std::string(static_cast<size_t>(std::max(line, 1) - 1), '\n') + padded + inner, path_);
        OCIB_ASSIGN_OR_RETURN(std::vector<Token> toks, lx.run());
        // A JSON file's strings have no positions: their parts are named by the string's.
        if (loc.line <= 0)
          for (auto& tk : toks) tk.loc = loc;
        Parser sub(std::move(toks), path_);
        OCIB_ASSIGN_OR_RETURN(ExprPtr x, sub.expr(depth + 1));
        if (!sub.at_end()) return Error::at(sub.peek().loc, "unexpected " + describe(sub.peek()) + " in ${ }");
        e->items.push_back(x);
        step(j + 1 - i);
        continue;
      }
      lit += c;
      step(1);
    }
    flush();
    return ExprPtr(e);
  }

 private:
  // A label or key: escapes only.
  static std::string unescape_plain(const std::string& raw) {
    std::string out;
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '\\' && i + 1 < raw.size()) {
        char n = raw[++i];
        out += n == 'n' ? '\n' : n == 't' ? '\t' : n;
      } else {
        out += raw[i];
      }
    }
    return out;
  }
  static std::string describe(const Token& t) {
    switch (t.kind) {
      case Tok::kEof: return "the end of the file";
      case Tok::kIdent: return "\"" + t.text + "\"";
      case Tok::kNumber: return "the number " + t.text;
      case Tok::kString: return "a string";
      case Tok::kHeredoc: return "a heredoc";
      case Tok::kPunct: return "'" + t.text + "'";
    }
    return "?";
  }
  bool is(const char* p) const { return peek().kind == Tok::kPunct && peek().text == p; }
  Token next() {
    Token t = peek();
    if (p_ < t_.size()) ++p_;
    return t;
  }

  std::vector<Token> t_;
  std::string path_;
  size_t p_ = 0;
};

// ---- evaluation ----

struct Scope {
  const std::map<std::string, json>* vars = nullptr;
  const std::map<std::string, json>* locals = nullptr;  // matrix values
  std::function<Result<json>(const std::string&, const SourceLoc&)> lazy;  // variables not evaluated yet
};

Result<std::string> to_text(const json& v, const SourceLoc& loc) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return std::string(v.get<bool>() ? "true" : "false");
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number()) return v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (v.is_null()) return std::string();
  return Error::at(loc, std::string("cannot interpolate a ") + v.type_name() + " into a string");
}

bool truthy(const json& v) {
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_string()) return v == "true";
  return false;
}

Result<json> eval(const Expr& e, const Scope& sc, int depth = 0) {
  if (depth > kMaxDepth * 4) return Error::at(e.loc, "expression nested too deeply");
  switch (e.op) {
    case Expr::Op::kLiteral:
      return e.literal;
    case Expr::Op::kTemplate: {
      // A template that is one ${EXPR} keeps its value's type (HCL's rule).
      if (e.items.size() == 1 && e.items[0]->op != Expr::Op::kLiteral) return eval(*e.items[0], sc, depth + 1);
      std::string out;
      for (const auto& p : e.items) {
        OCIB_ASSIGN_OR_RETURN(json v, eval(*p, sc, depth + 1));
        OCIB_ASSIGN_OR_RETURN(std::string s, to_text(v, p->loc));
        out += s;
      }
      return json(out);
    }
    case Expr::Op::kVar: {
      if (sc.locals)
        if (auto it = sc.locals->find(e.name); it != sc.locals->end()) return it->second;
      if (sc.vars)
        if (auto it = sc.vars->find(e.name); it != sc.vars->end()) return it->second;
      if (sc.lazy) return sc.lazy(e.name, e.loc);
      return Error::at(e.loc, "unknown variable \"" + e.name + "\"");
    }
    case Expr::Op::kList: {
      json out = json::array();
      for (const auto& x : e.items) {
        OCIB_ASSIGN_OR_RETURN(json v, eval(*x, sc, depth + 1));
        out.push_back(v);
      }
      return out;
    }
    case Expr::Op::kObject: {
      json out = json::object();
      for (const auto& [k, x] : e.fields) {
        OCIB_ASSIGN_OR_RETURN(json v, eval(*x, sc, depth + 1));
        out[k] = v;
      }
      return out;
    }
    case Expr::Op::kNot: {
      OCIB_ASSIGN_OR_RETURN(json v, eval(*e.items[0], sc, depth + 1));
      return json(!truthy(v));
    }
    case Expr::Op::kBinary: {
      OCIB_ASSIGN_OR_RETURN(json a, eval(*e.items[0], sc, depth + 1));
      if (e.name == "&&" && !truthy(a)) return json(false);
      if (e.name == "||" && truthy(a)) return json(true);
      OCIB_ASSIGN_OR_RETURN(json b, eval(*e.items[1], sc, depth + 1));
      if (e.name == "==") return json(a == b);
      if (e.name == "!=") return json(a != b);
      return json(truthy(b));
    }
    case Expr::Op::kCond: {
      OCIB_ASSIGN_OR_RETURN(json c, eval(*e.items[0], sc, depth + 1));
      if (!c.is_boolean()) return Error::at(e.items[0]->loc, "a condition must be true or false, not " + c.dump(-1, ' ', false, json::error_handler_t::replace));
      return eval(*e.items[c.get<bool>() ? 1 : 2], sc, depth + 1);
    }
    case Expr::Op::kCall: {
      std::vector<json> args;
      for (const auto& x : e.items) {
        OCIB_ASSIGN_OR_RETURN(json v, eval(*x, sc, depth + 1));
        args.push_back(v);
      }
      auto want = [&](size_t n) -> Status {
        if (args.size() != n)
          return Error::at(e.loc, e.name + "() takes " + std::to_string(n) + " argument" + (n == 1 ? "" : "s") + ", not " +
                                      std::to_string(args.size()));
        return {};
      };
      if (e.name == "lower" || e.name == "upper") {
        OCIB_TRY(want(1));
        OCIB_ASSIGN_OR_RETURN(std::string s, to_text(args[0], e.loc));
        return json(e.name == "lower" ? ascii_lower(s) : ascii_upper(s));
      }
      if (e.name == "join") {
        OCIB_TRY(want(2));
        OCIB_ASSIGN_OR_RETURN(std::string sep, to_text(args[0], e.loc));
        if (!args[1].is_array()) return Error::at(e.loc, "join() wants a list as its second argument");
        std::vector<std::string> parts;
        for (const auto& x : args[1]) {
          OCIB_ASSIGN_OR_RETURN(std::string s, to_text(x, e.loc));
          parts.push_back(s);
        }
        return json(join(parts, sep));
      }
      if (e.name == "equal" || e.name == "notequal") {
        OCIB_TRY(want(2));
        return json((args[0] == args[1]) == (e.name == "equal"));
      }
      if (e.name == "and" || e.name == "or") {
        OCIB_TRY(want(2));
        return json(e.name == "and" ? truthy(args[0]) && truthy(args[1]) : truthy(args[0]) || truthy(args[1]));
      }
      if (e.name == "not") {
        OCIB_TRY(want(1));
        return json(!truthy(args[0]));
      }
      return Error::at(e.loc, "function " + e.name + "() is not supported by ocib's HCL subset (lower, upper, join, equal, notequal, and, or, not)");
    }
  }
  return Error::at(e.loc, "cannot evaluate");
}

bool valid_name(const std::string& n) {
  // buildx's rule: ^[a-zA-Z0-9_-]+$
  if (n.empty()) return false;
  for (char c : n)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  return true;
}

std::string dir_of(const std::string& path) {
  if (path == "-") return ".";  // standard input
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// The target block's attributes, evaluated in `sc`, into `t`.
Status fill_target(const Block& b, const std::string& name, const Scope& sc, Target& t) {
  std::vector<std::string> known = {"inherits", "matrix", "name"};
  for (const auto& f : fields()) known.push_back(f.name);
  for (const auto& a : b.body.attrs) {
    if (a.name == "matrix" || a.name == "name") continue;
    OCIB_ASSIGN_OR_RETURN(json v, eval(*a.value, sc));
    if (a.name == "inherits") {
      if (!v.is_array()) return Error::at(a.loc, "inherits: want a list of target names");
      for (const auto& x : v) {
        if (!x.is_string()) return Error::at(a.loc, "inherits: want a list of target names");
        t.inherits.push_back(x.get<std::string>());
      }
      continue;
    }
    const Field* f = find_field(a.name);
    if (!f) return Error::at(a.loc, "unknown attribute \"" + a.name + "\" in target \"" + name + "\"" + did_you_mean(a.name, known));
    if (v.is_null()) continue;  // HCL: null is unset
    OCIB_ASSIGN_OR_RETURN(t.attrs[a.name], coerce(*f, v, a.loc));
  }
  for (const auto& blk : b.body.blocks)
    return Error::at(blk.loc, "unexpected block \"" + blk.type + "\" in target \"" + name + "\"");
  return {};
}

}  // namespace

Result<Document> parse_hcl(const std::string& text, const std::string& path) {
  Lexer lx(text, path);
  OCIB_ASSIGN_OR_RETURN(std::vector<Token> toks, lx.run());
  Parser p(std::move(toks), path);
  Document d;
  d.path = path;
  OCIB_ASSIGN_OR_RETURN(d.body, p.body(true, 0));
  return d;
}

namespace {

// A JSON value as an expression: strings are templates (buildx reads JSON as HCL's JSON
// syntax), the rest literal.
Result<ExprPtr> json_expr(const json& v, const SourceLoc& loc, Parser& p, int depth) {
  if (depth > kMaxDepth) return Error::at(loc, "JSON nested too deeply");
  if (v.is_string()) return p.template_expr(v.get<std::string>(), loc, true, depth);
  auto e = std::make_shared<Expr>();
  e->loc = loc;
  if (v.is_array()) {
    e->op = Expr::Op::kList;
    for (const auto& x : v) {
      OCIB_ASSIGN_OR_RETURN(ExprPtr i, json_expr(x, loc, p, depth + 1));
      e->items.push_back(i);
    }
  } else if (v.is_object()) {
    e->op = Expr::Op::kObject;
    for (const auto& [k, x] : v.items()) {
      OCIB_ASSIGN_OR_RETURN(ExprPtr i, json_expr(x, loc, p, depth + 1));
      e->fields.push_back({k, i});
    }
  } else {
    e->literal = v;
  }
  return ExprPtr(e);
}

}  // namespace

Result<Document> parse_json(const std::string& text, const std::string& path) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::out_of_range& e) {  // a number too large
    return Error::at({path, 0, 0}, std::string("invalid JSON: ") + e.what());
  } catch (const json::parse_error& e) {
    // The byte offset as a line and column.
    int line = 1, col = 1;
    for (size_t i = 0; i + 1 < e.byte && i < text.size(); ++i) {
      if (text[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    std::string what = e.what();
    if (auto c = what.find("syntax error"); c != std::string::npos) what = what.substr(c);
    return Error::at({path, line, col}, "invalid JSON: " + what);
  } catch (const json::exception& e) {
    return Error::at({path, 0, 0}, std::string("invalid JSON: ") + e.what());
  }
  if (!j.is_object()) return Error::at({path, 1, 1}, "a bake file in JSON is an object ({\"target\": {...}})");
  Parser p({Token{}}, path);
  Document d;
  d.path = path;
  for (const auto& [k, v] : j.items()) {
    SourceLoc loc{path, 0, 0};
    if (k == "target" || k == "group" || k == "variable") {
      if (!v.is_object()) return Error::at(loc, "\"" + k + "\" must be an object of names");
      for (const auto& [name, body] : v.items()) {
        if (!body.is_object()) return Error::at(loc, k + " \"" + name + "\" must be an object");
        Block b;
        b.type = k;
        b.labels = {name};
        b.loc = {path + " (" + k + " \"" + name + "\")", 0, 0};
        for (const auto& [an, av] : body.items()) {
          SourceLoc aloc{path + " (" + k + " \"" + name + "\", " + an + ")", 0, 0};
          OCIB_ASSIGN_OR_RETURN(ExprPtr x, json_expr(av, aloc, p, 0));
          b.body.attrs.push_back({an, x, aloc});
        }
        d.body.blocks.push_back(std::move(b));
      }
      continue;
    }
    OCIB_ASSIGN_OR_RETURN(ExprPtr x, json_expr(v, loc, p, 0));
    d.body.attrs.push_back({k, x, {path + " (" + k + ")", 0, 0}});
  }
  return d;
}

Result<std::vector<Config>> evaluate(const std::vector<Document>& docs, const Env& env,
                                     const std::map<std::string, json>& builtins) {
  // Variables: blocks (a later file's wins) and top-level attributes.
  struct VarDef {
    ExprPtr def;
    SourceLoc loc;
    bool block = false;
  };
  std::map<std::string, VarDef> defs;
  for (const auto& d : docs) {
    for (const auto& a : d.body.attrs) defs[a.name] = {a.value, a.loc, false};
    for (const auto& b : d.body.blocks) {
      if (b.type != "variable") continue;
      if (b.labels.size() != 1) return Error::at(b.loc, "a variable block takes one name: variable \"NAME\" { default = ... }");
      VarDef v;
      v.loc = b.loc;
      v.block = true;
      for (const auto& a : b.body.attrs) {
        if (a.name == "default") v.def = a.value;
        else if (a.name != "description" && a.name != "type")
          return Error::at(a.loc, "unknown attribute \"" + a.name + "\" in variable \"" + b.labels[0] + "\" (default, description)");
      }
      auto prev = defs.find(b.labels[0]);
      if (prev != defs.end() && !v.def) v.def = prev->second.def;  // an override file's block without a default
      defs[b.labels[0]] = v;
    }
  }
  std::map<std::string, json> vars;
  for (const auto& [k, v] : builtins)
    if (!defs.count(k)) vars[k] = v;
  std::set<std::string> evaluating;
  Scope sc;
  sc.vars = &vars;
  std::function<Result<json>(const std::string&, const SourceLoc&)> lazy = [&](const std::string& n,
                                                                               const SourceLoc& at) -> Result<json> {
    if (auto it = vars.find(n); it != vars.end()) return it->second;
    auto d = defs.find(n);
    if (d == defs.end()) {
      std::vector<std::string> names;
      for (const auto& [k, v] : defs) names.push_back(k);
      return Error::at(at, "unknown variable \"" + n + "\"" + did_you_mean(n, names));
    }
    if (evaluating.count(n)) return Error::at(d->second.loc, "variable \"" + n + "\" refers to itself");
    evaluating.insert(n);
    json def = "";
    if (d->second.def) {
      auto r = eval(*d->second.def, sc);
      if (!r.ok()) return std::move(r).error();
      def = *r;
    }
    evaluating.erase(n);
    json val = def;
    // buildx: the environment overrides a variable block's default, typed like the default.
    if (d->second.block)
      if (auto e = env(n)) {
        if (def.is_boolean()) {
          std::string l = ascii_lower(*e);
          if (l == "true" || l == "1") val = true;
          else if (l == "false" || l == "0") val = false;
          else return Error::at(d->second.loc, "variable \"" + n + "\": $" + n + "=\"" + *e + "\" is not a bool");
        } else if (def.is_number()) {
          char* end = nullptr;
          double x = std::strtod(e->c_str(), &end);
          if (e->empty() || *end) return Error::at(d->second.loc, "variable \"" + n + "\": $" + n + "=\"" + *e + "\" is not a number");
          val = def.is_number_integer() && e->find_first_of(".eE") == std::string::npos ? json(std::strtoll(e->c_str(), nullptr, 10)) : json(x);
        } else {
          val = *e;
        }
      }
    vars[n] = val;
    return val;
  };
  sc.lazy = lazy;
  for (const auto& [n, d] : defs) {
    auto r = lazy(n, d.loc);
    if (!r.ok()) return std::move(r).error();
  }

  std::vector<Config> out;
  for (const auto& d : docs) {
    Config c;
    const std::string dir = dir_of(d.path);
    for (const auto& b : d.body.blocks) {
      if (b.type == "variable") continue;
      if (b.type != "target" && b.type != "group") {
        std::string hint = b.type == "function" ? " (user functions are not supported by ocib's HCL subset)"
                                                : did_you_mean(b.type, {"target", "group", "variable"});
        return Error::at(b.loc, "unknown block type \"" + b.type + "\"" + hint);
      }
      if (b.labels.size() != 1) return Error::at(b.loc, "a " + b.type + " block takes one name: " + b.type + " \"NAME\" { ... }");
      const std::string& name = b.labels[0];
      if (!valid_name(name))
        return Error::at(b.loc, "invalid " + b.type + " name \"" + name + "\" (letters, digits, _ and -)");
      if (b.type == "group") {
        Group g;
        g.name = name;
        g.loc = b.loc;
        for (const auto& a : b.body.attrs) {
          if (a.name == "description") continue;
          if (a.name != "targets") return Error::at(a.loc, "unknown attribute \"" + a.name + "\" in group \"" + name + "\" (targets)");
          OCIB_ASSIGN_OR_RETURN(json v, eval(*a.value, sc));
          if (!v.is_array()) return Error::at(a.loc, "targets: want a list of target names");
          for (const auto& x : v) {
            if (!x.is_string()) return Error::at(a.loc, "targets: want a list of target names");
            g.targets.push_back(x.get<std::string>());
          }
        }
        Config one;
        one.groups[name] = g;
        merge_config(c, one);
        continue;
      }
      const Attribute* matrix = nullptr;
      const Attribute* name_attr = nullptr;
      for (const auto& a : b.body.attrs) {
        if (a.name == "matrix") matrix = &a;
        if (a.name == "name") name_attr = &a;
      }
      if (!matrix) {
        if (name_attr) return Error::at(name_attr->loc, "\"name\" goes with a matrix");
        Config one;
        Target& t = one.targets[name];
        t.name = name;
        t.loc = b.loc;
        t.dir = dir;
        OCIB_TRY(fill_target(b, name, sc, t));
        merge_config(c, one);
        continue;
      }
      OCIB_ASSIGN_OR_RETURN(json m, eval(*matrix->value, sc));
      if (!m.is_object() || m.empty()) return Error::at(matrix->loc, "matrix: want an object of lists, e.g. { tgt = [\"a\", \"b\"] }");
      for (const auto& [k, v] : m.items())
        if (!v.is_array() || v.empty()) return Error::at(matrix->loc, "matrix: \"" + k + "\" must be a non-empty list");
      if (!name_attr) return Error::at(matrix->loc, "a target with a matrix needs a name = \"...${KEY}...\" for each combination");
      std::vector<std::string> keys;
      for (const auto& [k, v] : m.items()) keys.push_back(k);
      std::vector<size_t> idx(keys.size(), 0);
      Group g;
      g.name = name;
      g.loc = b.loc;
      size_t combos = 1;
      for (const auto& k : keys) combos *= m[k].size();
      if (combos > 1000) return Error::at(matrix->loc, "matrix: " + std::to_string(combos) + " combinations (at most 1000)");
      for (;;) {
        std::map<std::string, json> locals;
        for (size_t i = 0; i < keys.size(); ++i) locals[keys[i]] = m[keys[i]][idx[i]];
        Scope inner = sc;
        inner.locals = &locals;
        OCIB_ASSIGN_OR_RETURN(json nv, eval(*name_attr->value, inner));
        if (!nv.is_string() || !valid_name(nv.get<std::string>()))
          return Error::at(name_attr->loc, "matrix name " + nv.dump(-1, ' ', false, json::error_handler_t::replace) + " is not a valid target name (letters, digits, _ and -)");
        std::string tn = nv.get<std::string>();
        Config one;
        Target& t = one.targets[tn];
        t.name = tn;
        t.loc = b.loc;
        t.dir = dir;
        OCIB_TRY(fill_target(b, tn, inner, t));
        merge_config(c, one);
        g.targets.push_back(tn);
        size_t i = 0;
        for (; i < keys.size(); ++i) {
          if (++idx[i] < m[keys[i]].size()) break;
          idx[i] = 0;
        }
        if (i == keys.size()) break;
      }
      Config one;
      one.groups[name] = g;
      merge_config(c, one);
    }
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace ocib::bake
