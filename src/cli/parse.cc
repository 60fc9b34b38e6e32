// The parser and --help, both read from the table (table.h).

#include <algorithm>

#include "base/spec.h"
#include "cli/table.h"

namespace ocib::cli {

std::optional<std::string> Parsed::last(std::string_view name) const {
  for (auto it = flags.rbegin(); it != flags.rend(); ++it)
    if (it->flag->name == name) return it->value;
  return std::nullopt;
}

std::vector<std::string> Parsed::all(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& o : flags)
    if (o.flag->name == name) out.push_back(o.value);
  return out;
}

namespace {

std::string choices_text(const Flag& f) { return "(" + join(f.choices, ", ") + ")"; }

bool is_choice(const Flag& f, const std::string& v) {
  return std::find(f.choices.begin(), f.choices.end(), v) != f.choices.end();
}

// The value checks every flag of the table states: choices (with a suggestion), numbers.
bool check_value(const Flag& f, const std::string& v, std::string* error) {
  if (!f.choices.empty()) {
    std::vector<std::string> parts = f.list ? split_commas(v) : std::vector<std::string>{v};
    if (parts.empty()) {
      *error = "--" + f.name + " needs a value " + choices_text(f);
      return false;
    }
    for (const auto& p : parts)
      if (!is_choice(f, p)) {
        *error = "unknown --" + f.name + " value \"" + p + "\" " + choices_text(f) + did_you_mean(p, f.choices);
        return false;
      }
  }
  if (f.positive_int) {
    auto n = parse_u32(v);
    if (!n || *n < 1) {
      *error = "--" + f.name + " needs a positive number, not \"" + v + "\"";
      return false;
    }
  }
  return true;
}

std::string see_help(const Command& cmd) { return " (see 'ocib " + cmd.name + " --help')"; }

}  // namespace

std::optional<Parsed> parse(const Command& cmd, const std::vector<std::string>& args, std::string* error) {
  Parsed p;
  auto find_long = [&](const std::string& name) -> const Flag* {
    for (const auto& f : cmd.flags)
      if (f.name == name) return &f;
    return nullptr;
  };
  auto find_short = [&](char c) -> const Flag* {
    for (const auto& f : cmd.flags)
      if (f.short_name == c) return &f;
    return nullptr;
  };
  auto add = [&](const Flag* f, std::string value, std::string spelling) {
    if (!check_value(*f, value, error)) return false;
    p.flags.push_back({f, std::move(value), std::move(spelling)});
    return true;
  };
  bool only_args = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& s = args[i];
    if (only_args || s == "-" || s.empty() || s[0] != '-') {
      p.args.push_back(s);
      continue;
    }
    if (s == "--") {
      only_args = true;
      continue;
    }
    if (s == "-h" || s == "--help") {
      p.help = true;
      continue;
    }
    const Flag* f = nullptr;
    std::string spelling;
    std::optional<std::string> attached;  // --name=value, -xVALUE
    if (s.rfind("--", 0) == 0) {
      auto eq = s.find('=');
      std::string name = s.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      spelling = "--" + name;
      if (eq != std::string::npos) attached = s.substr(eq + 1);
      if (name == "help") {
        p.help = true;
        continue;
      }
      f = find_long(name);  // a hidden flag parses; it is only left out of help and suggestions
      if (!f) {
        std::vector<std::string> names;
        for (const auto& g : cmd.flags)
          if (!g.hidden) names.push_back("--" + g.name);
        names.push_back("--help");
        *error = "unknown flag " + spelling + did_you_mean(spelling, names) + see_help(cmd);
        return std::nullopt;
      }
    } else {
      spelling = s.substr(0, 2);
      f = find_short(s[1]);
      if (!f) {
        *error = "unknown flag " + spelling + see_help(cmd);
        return std::nullopt;
      }
      if (s.size() > 2) {
        if (f->arg == Arg::kNone) {
          *error = "unknown flag " + s + see_help(cmd);  // no bundling of switches (-qa)
          return std::nullopt;
        }
        attached = s.substr(2);  // getopt's attached form: -j4, -tapp:1
      }
    }
    switch (f->arg) {
      case Arg::kNone:
        // Go's bool flags, as buildx has them: --push, --push=true, --push=false.
        if (attached && *attached != "true" && *attached != "false" && *attached != "1" && *attached != "0") {
          *error = "flag " + spelling + " takes no value (or =true, =false), not \"" + *attached + "\"";
          return std::nullopt;
        }
        p.flags.push_back({f, !attached || *attached == "true" || *attached == "1" ? "true" : "false", spelling});
        break;
      case Arg::kOptional:
        // --pull, --pull=never, and --pull never: the next word is its value only when it is
        // one of the values (so `--pull .` keeps "." as the context).
        if (attached) {
          if (!add(f, *attached, spelling)) return std::nullopt;
        } else if (i + 1 < args.size() && is_choice(*f, args[i + 1])) {
          if (!add(f, args[++i], spelling)) return std::nullopt;
        } else {
          p.flags.push_back({f, f->implicit, spelling});
        }
        break;
      case Arg::kValue:
        if (attached) {
          if (!add(f, *attached, spelling)) return std::nullopt;
        } else if (i + 1 >= args.size()) {
          *error = "flag " + s + " needs a value (" + f->value + ")";
          return std::nullopt;
        } else {
          if (!add(f, args[++i], spelling)) return std::nullopt;
        }
        break;
    }
  }
  if (p.help) return p;
  // A command with subcommands takes the subcommand as its first argument.
  if (!cmd.subcommands.empty()) {
    if (p.args.empty()) {
      *error = "ocib " + cmd.name + " needs a command (" + join(cmd.subcommands, ", ") + ")" + see_help(cmd);
      return std::nullopt;
    }
    if (std::find(cmd.subcommands.begin(), cmd.subcommands.end(), p.args[0]) == cmd.subcommands.end()) {
      *error = "unknown " + cmd.name + " command \"" + p.args[0] + "\"" + did_you_mean(p.args[0], cmd.subcommands) +
               see_help(cmd);
      return std::nullopt;
    }
    return p;
  }
  int n = static_cast<int>(p.args.size());
  if (n < cmd.min_args || (cmd.max_args >= 0 && n > cmd.max_args)) {
    std::string want = cmd.min_args == cmd.max_args
                           ? (cmd.min_args == 0 ? "no arguments"
                                                : cmd.min_args == 1 ? "exactly one argument"
                                                                    : "exactly " + std::to_string(cmd.min_args) + " arguments")
                           : cmd.max_args < 0 ? "at least " + std::to_string(cmd.min_args) + " argument" +
                                                    (cmd.min_args == 1 ? "" : "s")
                                              : std::to_string(cmd.min_args) + " to " + std::to_string(cmd.max_args) +
                                                    " arguments";
    *error = "ocib " + cmd.name + " takes " + want + ", got " + std::to_string(n) + ": usage: ocib " + cmd.name +
             (cmd.usage.empty() ? "" : " " + cmd.usage);
    return std::nullopt;
  }
  return p;
}

// ---- help ---------------------------------------------------------------------------------

namespace {

constexpr size_t kHelpColumn = 27;  // where the help text starts ("  -f, --file FILE          ")

std::string indent_lines(const std::string& text, size_t column) {
  std::string out, pad(column, ' ');
  size_t p = 0;
  bool first = true;
  while (p <= text.size()) {
    size_t q = text.find('\n', p);
    if (q == std::string::npos) q = text.size();
    if (!first) out += "\n" + pad;
    out += text.substr(p, q - p);
    first = false;
    p = q + 1;
  }
  return out;
}

}  // namespace

std::string flag_left(const Flag& f) {
  std::string left = f.short_name ? std::string("-") + f.short_name + ", " : "    ";
  left += "--" + f.name;
  if (f.arg == Arg::kValue) left += " " + f.value;
  if (f.arg == Arg::kOptional) left += "[=" + f.value + "]";
  return left;
}

std::string main_help() {
  std::string out = "Usage: ocib COMMAND [ARGS]\n\nA daemonless, rootless OCI image builder.\n\nCommands:\n";
  std::vector<const Command*> top;
  for (const auto& c : commands())
    if (!c.hidden && c.name.find(' ') == std::string::npos) top.push_back(&c);
  std::sort(top.begin(), top.end(), [](const Command* a, const Command* b) {
    // build first (what ocib is for), the rest alphabetically.
    if ((a->name == "build") != (b->name == "build")) return a->name == "build";
    return a->name < b->name;
  });
  for (const auto* c : top) {
    std::string name = c->name;
    name.resize(std::max<size_t>(name.size() + 1, 11), ' ');
    out += "  " + name + c->summary + "\n";
  }
  out += "\nRun 'ocib COMMAND --help' for more.\n";
  return out;
}

std::string help(const Command& cmd) {
  // A command with subcommands shows each one's usage instead of its own.
  std::string out;
  for (const auto& sub : cmd.subcommands)
    if (const Command* s = find_command(cmd.name + " " + sub))
      out += (out.empty() ? "Usage: ocib " : "       ocib ") + s->name + (s->usage.empty() ? "" : " " + s->usage) + "\n";
  if (out.empty()) out = "Usage: ocib " + cmd.name + (cmd.usage.empty() ? "" : " " + cmd.usage) + "\n";
  if (!cmd.description.empty()) out += "\n" + cmd.description + "\n";
  std::vector<const Flag*> shown;
  for (const auto& f : cmd.flags)
    if (!f.hidden) shown.push_back(&f);
  if (!shown.empty()) {
    out += "\nOptions:\n";
    for (const auto* f : shown) {
      std::string left = "  " + flag_left(*f);
      if (left.size() + 1 > kHelpColumn) left += "\n" + std::string(kHelpColumn, ' ');
      else left.resize(kHelpColumn, ' ');
      out += left + indent_lines(f->help, kHelpColumn) + "\n";
    }
    out += "  -h, --help               print this help\n";
  }
  if (!cmd.examples.empty()) out += "\nExample" + std::string(cmd.examples.find('\n') == std::string::npos ? "" : "s") +
                                    ":\n  " + indent_lines(cmd.examples, 2) + "\n";
  return out;
}

}  // namespace ocib::cli
