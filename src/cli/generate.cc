// The files made from the table: bash, zsh and fish completions, the man pages' OPTIONS
// sections, and the README check. cli_table_test fails when a committed file differs from
// what these produce; scripts/generate-cli.sh rewrites them.

#include <algorithm>
#include <regex>
#include <set>

#include "base/spec.h"
#include "cli/table.h"

namespace ocib::cli {
namespace {

std::vector<const Command*> top_commands() {
  std::vector<const Command*> out;
  for (const auto& c : commands())
    if (!c.hidden && c.name.find(' ') == std::string::npos) out.push_back(&c);
  return out;
}

std::vector<const Flag*> shown_flags(const Command& c) {
  std::vector<const Flag*> out;
  for (const auto& f : c.flags)
    if (!f.hidden) out.push_back(&f);
  return out;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t p = 0; (p = s.find(from, p)) != std::string::npos; p += to.size()) s.replace(p, from.size(), to);
  return s;
}

// The help text on one line, cut at a word to at most 72 characters, for completion menus.
std::string first_line(const std::string& s) {
  std::string one = replace_all(s, "\n", " ");
  if (one.size() <= 72) return one;
  size_t cut = one.rfind(' ', 69);
  return one.substr(0, cut == std::string::npos ? 69 : cut) + "...";
}

// Single-quoted for sh: ' becomes '\''.
std::string sq(const std::string& s) { return "'" + replace_all(s, "'", "'\\''") + "'"; }

std::vector<std::string> values_offered(const Flag& f) {
  std::vector<std::string> v = f.choices;
  v.insert(v.end(), f.completions.begin(), f.completions.end());
  return v;
}

// The subcommand's words, e.g. "manifest create" -> the command whose flags apply.
std::vector<const Command*> with_flags(const Command& top) {
  std::vector<const Command*> out{&top};
  for (const auto& s : top.subcommands)
    if (const Command* c = find_command(top.name + " " + s)) out.push_back(c);
  return out;
}

}  // namespace

// ---- bash ---------------------------------------------------------------------------------

std::string bash_completion() {
  std::string cmds;
  for (const auto* c : top_commands()) cmds += c->name + " ";
  cmds += "help";
  std::string out =
      "# bash completion for ocib(1)                                   -*- shell-script -*-\n"
      "# Installed as ${datadir}/bash-completion/completions/ocib (loaded on demand).\n"
      "# Generated from src/cli/table.cc by `ocib __generate bash` (scripts/generate-cli.sh): do not edit.\n"
      "# shellcheck disable=SC2207 # COMPREPLY=($(compgen ...)) is the completion idiom\n"
      "\n"
      "# _ocib_value VERB FLAG: completes FLAG's value into COMPREPLY; status 1 if FLAG takes none.\n"
      "_ocib_value() {\n"
      "  case $1:$2 in\n";
  for (const auto* top : top_commands())
    for (const auto* c : with_flags(*top)) {
      std::string verb = c->name.substr(c->name.rfind(' ') + 1);
      for (const auto* f : shown_flags(*c)) {
        if (f->arg == Arg::kNone) continue;
        std::string pat = verb + ":--" + f->name;
        if (f->short_name) pat = verb + ":-" + std::string(1, f->short_name) + " | " + pat;
        out += "    " + pat + ")";
        auto vals = values_offered(*f);
        if (f->complete == Complete::kFile) out += " _filedir ;;\n";
        else if (f->complete == Complete::kDir) out += " _filedir -d ;;\n";
        else if (!vals.empty()) {
          out += " COMPREPLY=($(compgen -W " + sq(join(vals, " ")) + " -- \"$cur\"))";
          bool open = std::any_of(vals.begin(), vals.end(), [](const std::string& v) { return v.back() == '='; });
          out += open ? "; compopt -o nospace ;;\n" : " ;;\n";
        } else out += " ;;\n";
      }
    }
  out +=
      "    *) return 1 ;;\n"
      "  esac\n"
      "  return 0\n"
      "}\n"
      "\n"
      "_ocib() {\n"
      "  local cur prev words cword\n"
      "  _init_completion -n = || return\n"
      "\n"
      "  local commands=" + sq(cmds) + "\n"
      "\n"
      "  # The verb is the first word after \"ocib\" that is not an option; a subcommand the next.\n"
      "  local verb=\"\" sub=\"\" i\n"
      "  for ((i = 1; i < cword; i++)); do\n"
      "    case ${words[i]} in\n"
      "      -*) ;;\n"
      "      *) if [[ -z $verb ]]; then verb=${words[i]}; elif [[ -z $sub ]]; then sub=${words[i]}; fi ;;\n"
      "    esac\n"
      "  done\n"
      "\n"
      "  if [[ -z $verb ]]; then\n"
      "    if [[ $cur == -* ]]; then\n"
      "      COMPREPLY=($(compgen -W '--help --version' -- \"$cur\"))\n"
      "    else\n"
      "      COMPREPLY=($(compgen -W \"$commands\" -- \"$cur\"))\n"
      "    fi\n"
      "    return\n"
      "  fi\n"
      "\n"
      "  local flags=\"\" args=\"\" subs=\"\"\n"
      "  case $verb in\n";
  for (const auto* top : top_commands()) {
    out += "    " + top->name + ")";
    if (!top->subcommands.empty()) {
      out += "\n      subs=" + sq(join(top->subcommands, " ")) + "\n      case $sub in\n";
      for (const auto* c : with_flags(*top)) {
        if (c == top) continue;
        std::string words;
        for (const auto* f : shown_flags(*c))
          words += (f->short_name ? std::string("-") + f->short_name + " " : "") + "--" + f->name + " ";
        out += "        " + c->name.substr(c->name.rfind(' ') + 1) + ") verb=" + c->name.substr(c->name.rfind(' ') + 1) +
               " subs=\"\" flags=" + sq(words + "-h --help") + " ;;\n";
      }
      out += "        *) flags='-h --help' ;;\n      esac\n      ;;\n";
      continue;
    }
    std::string words;
    for (const auto* f : shown_flags(*top))
      words += (f->short_name ? std::string("-") + f->short_name + " " : "") + "--" + f->name + " ";
    out += " flags=" + sq(words + "-h --help");
    if (top->positional == "dir") out += " args=dir";
    if (top->positional == "file") out += " args=file";
    if (top->positional == "json") out += " args=json";
    out += " ;;\n";
  }
  out +=
      "    *) return ;;\n"
      "  esac\n"
      "\n"
      "  # \"--flag=value\": complete the value, keeping the \"--flag=\" the word starts with.\n"
      "  if [[ $cur == --*=* ]]; then\n"
      "    local flag=${cur%%=*}\n"
      "    cur=${cur#*=}\n"
      "    _ocib_value \"$verb\" \"$flag\"\n"
      "    return\n"
      "  fi\n"
      "  _ocib_value \"$verb\" \"$prev\" && return\n"
      "\n"
      "  if [[ $cur == -* ]]; then\n"
      "    COMPREPLY=($(compgen -W \"$flags\" -- \"$cur\"))\n"
      "  elif [[ -n $subs ]]; then\n"
      "    COMPREPLY=($(compgen -W \"$subs\" -- \"$cur\"))\n"
      "  else\n"
      "    case $args in\n"
      "      dir) _filedir -d ;;\n"
      "      file) _filedir ;;\n"
      "      json) _filedir json ;;\n"
      "    esac\n"
      "  fi\n"
      "} &&\n"
      "  complete -F _ocib ocib\n"
      "\n"
      "# ex: filetype=sh\n";
  return out;
}

// ---- zsh ----------------------------------------------------------------------------------

namespace {

std::string zsh_escape_desc(std::string s) {
  s = replace_all(s, "\\", "\\\\");
  s = replace_all(s, "[", "\\[");
  s = replace_all(s, "]", "\\]");
  return s;
}

std::string zsh_escape_msg(std::string s) { return replace_all(s, ":", "\\:"); }

std::string zsh_spec(const Flag& f) {
  std::string desc = "[" + zsh_escape_desc(first_line(f.help)) + "]";
  std::string action;
  if (f.arg != Arg::kNone) {
    std::string msg = zsh_escape_msg(f.value);
    auto vals = values_offered(f);
    if (f.complete == Complete::kFile) action = ":" + msg + ":_files";
    else if (f.complete == Complete::kDir) action = ":" + msg + ":_directories";
    else if (!vals.empty()) action = ":" + msg + ":(" + replace_all(join(vals, " "), ":", "\\:") + ")";
    else action = ":" + msg + ": ";
  }
  std::string suffix = f.arg == Arg::kValue ? "=" : f.arg == Arg::kOptional ? "=-" : "";
  std::string rep = f.repeatable ? "*" : "";
  std::string out;
  if (f.short_name) {
    std::string s = std::string("-") + f.short_name;
    std::string excl = f.repeatable ? "" : "(" + s + " --" + f.name + ")";
    out = "'" + rep + excl + "'{" + s + (f.arg == Arg::kValue ? "+" : "") + ",--" + f.name + suffix + "}";
  } else {
    out = rep + "--" + f.name + suffix;
  }
  std::string rest = desc + action;
  // One single-quoted word: close and reopen around the brace expansion's result.
  if (f.short_name) return out + sq(rest);
  return sq(out + rest);
}

std::string zsh_fn(const std::string& name) { return "_ocib_" + replace_all(replace_all(name, " ", "_"), "-", "_"); }

}  // namespace

std::string zsh_completion() {
  std::string out =
      "#compdef ocib\n"
      "# zsh completion for ocib(1). Installed as _ocib in a directory on $fpath\n"
      "# (Debian: /usr/share/zsh/vendor-completions).\n"
      "# Generated from src/cli/table.cc by `ocib __generate zsh` (scripts/generate-cli.sh): do not edit.\n";
  for (const auto* top : top_commands())
    for (const auto* c : with_flags(*top)) {
      out += "\n" + zsh_fn(c->name) + "() {\n";
      if (!c->subcommands.empty()) {
        out += "  local -a subs\n  subs=(\n";
        for (const auto& s : c->subcommands)
          if (const Command* sc = find_command(c->name + " " + s))
            out += "    " + sq(s + ":" + ascii_lower(sc->summary.substr(0, 1)) + sc->summary.substr(1)) + "\n";
        out += "  )\n  if (( CURRENT == 2 )); then\n    _describe -t commands 'ocib " + c->name +
               " command' subs\n    return\n  fi\n  case $words[2] in\n";
        for (const auto& s : c->subcommands)
          out += "    " + s + ") shift words; (( CURRENT-- )); " + zsh_fn(c->name + " " + s) + " ;;\n";
        out += "  esac\n}\n";
        continue;
      }
      out += "  _arguments -s -S";
      for (const auto* f : shown_flags(*c)) out += " \\\n    " + zsh_spec(*f);
      out += " \\\n    '(- *)'{-h,--help}'[show help]'";
      if (c->positional == "dir") out += " \\\n    '1:build context:_directories'";
      else if (c->positional == "file") out += " \\\n    '*:file:_files'";
      else if (c->positional == "json") out += " \\\n    '1:metadata file:_files -g \"*.json\"'";
      else if (c->max_args != 0) out += " \\\n    '*:argument: '";
      out += "\n}\n";
    }
  out +=
      "\n_ocib() {\n"
      "  local curcontext=$curcontext state line\n"
      "  local -a commands\n"
      "  commands=(\n";
  for (const auto* c : top_commands())
    out += "    " + sq(c->name + ":" + ascii_lower(c->summary.substr(0, 1)) + c->summary.substr(1)) + "\n";
  out +=
      "    'help:show help'\n"
      "  )\n"
      "\n"
      "  _arguments -C \\\n"
      "    '(- *)'{-h,--help}'[show help]' \\\n"
      "    '(- *)--version[show the version]' \\\n"
      "    '1:command:->command' \\\n"
      "    '*::argument:->argument' && return\n"
      "\n"
      "  case $state in\n"
      "    command)\n"
      "      _describe -t commands 'ocib command' commands\n"
      "      ;;\n"
      "    argument)\n"
      "      curcontext=${curcontext%:*:*}:ocib-$words[1]:\n"
      "      case $words[1] in\n";
  for (const auto* c : top_commands()) out += "        " + c->name + ") " + zsh_fn(c->name) + " ;;\n";
  out +=
      "        *) _arguments '(- *)'{-h,--help}'[show help]' ;;\n"
      "      esac\n"
      "      ;;\n"
      "  esac\n"
      "}\n"
      "\n"
      "_ocib \"$@\"\n";
  return out;
}

// ---- fish ---------------------------------------------------------------------------------

namespace {

std::string fish_q(const std::string& s) { return "'" + replace_all(replace_all(s, "\\", "\\\\"), "'", "\\'") + "'"; }

std::string capital(std::string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}

}  // namespace

std::string fish_completion() {
  std::string names;
  for (const auto* c : top_commands()) names += c->name + " ";
  names += "help";
  std::string out =
      "# fish completion for ocib(1). Installed in fish's vendor_completions.d.\n"
      "# Generated from src/cli/table.cc by `ocib __generate fish` (scripts/generate-cli.sh): do not edit.\n"
      "\n"
      "set -l ocib_commands " + names + "\n"
      "\n"
      "complete -c ocib -f\n"
      "complete -c ocib -n \"not __fish_seen_subcommand_from $ocib_commands\" -s h -l help -d 'Show help'\n"
      "complete -c ocib -n \"not __fish_seen_subcommand_from $ocib_commands\" -l version -d 'Show the version'\n";
  for (const auto* c : top_commands())
    out += "complete -c ocib -n \"not __fish_seen_subcommand_from $ocib_commands\" -a " + c->name + " -d " +
           fish_q(c->summary) + "\n";
  out += "complete -c ocib -n \"not __fish_seen_subcommand_from $ocib_commands\" -a help -d 'Show help'\n";
  for (const auto* top : top_commands()) {
    out += "\n# ocib " + top->name + (top->usage.empty() ? "" : " " + top->usage) + "\n";
    std::string seen = "__fish_seen_subcommand_from " + top->name;
    if (!top->subcommands.empty()) {
      std::string subs = join(top->subcommands, " ");
      for (const auto& s : top->subcommands)
        if (const Command* sc = find_command(top->name + " " + s))
          out += "complete -c ocib -n " + fish_q(seen + "; and not __fish_seen_subcommand_from " + subs) + " -a " + s +
                 " -d " + fish_q(sc->summary) + "\n";
    }
    for (const auto* c : with_flags(*top)) {
      std::string cond = c == top ? seen : seen + "; and __fish_seen_subcommand_from " + c->name.substr(c->name.rfind(' ') + 1);
      if (c == top && top->positional == "dir")
        out += "complete -c ocib -n " + fish_q(cond) + " -a '(__fish_complete_directories)' -d 'Build context'\n";
      if (c == top && (top->positional == "file" || top->positional == "json"))
        out += "complete -c ocib -n " + fish_q(cond) + " -F\n";
      for (const auto* f : shown_flags(*c)) {
        std::string line = "complete -c ocib -n " + fish_q(cond);
        if (f->short_name) line += " -s " + std::string(1, f->short_name);
        line += " -l " + f->name;
        if (f->arg != Arg::kNone) {
          auto vals = values_offered(*f);
          if (f->complete == Complete::kFile || f->complete == Complete::kDir) line += " -r -F";
          else if (!vals.empty()) line += " -x -a " + fish_q(join(vals, " "));
          else line += " -x";
        }
        line += " -d " + fish_q(capital(first_line(f->help)));
        out += line + "\n";
      }
      out += "complete -c ocib -n " + fish_q(cond) + " -s h -l help -d 'Show help'\n";
    }
  }
  return out;
}

// ---- man pages ----------------------------------------------------------------------------

namespace {

std::string man_heading(const Flag& f) {
  std::string h = f.short_name ? "*-" + std::string(1, f.short_name) + "*, " : "";
  h += "*--" + f.name + "*";
  if (f.arg == Arg::kValue) h += " _" + f.value + "_";
  if (f.arg == Arg::kOptional) h += "[=_" + f.value + "_]";
  return h;
}

// The help text as one sentence-cased paragraph.
std::string man_from_help(const Flag& f) {
  std::string s = replace_all(f.help, "\n", " ");
  // A sentence starts with a capital, unless it starts with a value ("true|false: ...").
  size_t word = s.find_first_not_of("abcdefghijklmnopqrstuvwxyz");
  if (word != std::string::npos && word > 0 && s[word] == ' ') s = capital(s);
  for (const char* c : {"*", "_"}) s = replace_all(s, c, std::string("\\") + c);
  if (!s.empty() && s.back() != '.' && s.back() != ')') s += ".";
  else if (!s.empty() && s.back() == ')') s += ".";
  return s;
}

std::string tab_lines(const std::string& text) {
  std::string out;
  size_t p = 0;
  while (p < text.size()) {
    size_t q = text.find('\n', p);
    if (q == std::string::npos) q = text.size();
    std::string line = text.substr(p, q - p);
    out += line.empty() ? "\n" : "\t" + line + "\n";
    p = q + 1;
  }
  return out;
}

std::string man_entries(const Command& c) {
  std::string out;
  for (const auto* f : shown_flags(c)) {
    std::string body = f->man.empty() ? man_from_help(*f) : f->man;
    if (!f->choices.empty() && f->man.empty() && f->choices.size() > 1)
      body += " One of *" + join(f->choices, "*, *") + "*.";
    if (f->repeatable && body.find("epeatable") == std::string::npos) body += " Repeatable.";
    if (!f->config_key.empty())
      body += "\nThe default comes from *" + f->config_key + "* in _ocib.toml_ (see *ocib*(1)); the flag wins.";
    out += man_heading(*f) + "\n" + tab_lines(body) + "\n";
  }
  return out;
}

}  // namespace

std::string man_options(const Command& cmd) {
  std::string out;
  if (cmd.subcommands.empty()) {
    out = man_entries(cmd);
  } else {
    for (const auto& s : cmd.subcommands) {
      const Command* sc = find_command(cmd.name + " " + s);
      if (!sc || sc->flags.empty()) continue;
      out += "Options of *" + sc->name + "*:\n\n" + man_entries(*sc);
    }
  }
  out += "*-h*, *--help*\n\tPrint a usage summary and exit.\n";
  return out;
}

std::string update_man_page(const std::string& page, const Command& cmd) {
  const std::string begin = std::string("; ") + kBeginMarker + "\n", end = std::string("; ") + kEndMarker + "\n";
  size_t b = page.find(begin);
  if (b == std::string::npos) return page;
  size_t e = page.find(end, b);
  if (e == std::string::npos) return page;
  return page.substr(0, b + begin.size()) + "\n" + man_options(cmd) + "\n" + page.substr(e);
}

// ---- README -------------------------------------------------------------------------------

std::vector<std::string> check_readme(const std::string& readme) {
  std::vector<std::string> problems;
  // The Usage block: "```" after "## Usage", up to the closing fence.
  size_t u = readme.find("\n## Usage");
  size_t fence = u == std::string::npos ? u : readme.find("```", u);
  size_t fence_end = fence == std::string::npos ? fence : readme.find("```", fence + 3);
  if (fence_end == std::string::npos) return {"README.md: no ## Usage block"};
  std::string usage = readme.substr(fence, fence_end - fence);
  for (const auto* c : top_commands())
    if (!std::regex_search(usage, std::regex("ocib ([a-z]+/)*" + c->name + "\\b")))
      problems.push_back("README.md Usage: no ocib " + c->name);
  // The build table: rows after "`ocib build` takes buildx's flags:" up to the first line not a row.
  size_t t = readme.find("`ocib build` takes buildx's flags:");
  if (t == std::string::npos) return {"README.md: no build option table"};
  const Command* build = find_command("build");
  std::set<std::string> in_table;
  size_t p = readme.find('\n', t) + 1;
  while (p < readme.size() && (readme[p] == '|' || readme[p] == '\n')) {
    size_t q = readme.find('\n', p);
    std::string row = readme.substr(p, q - p);
    p = q + 1;
    if (row.empty()) {
      if (!in_table.empty() || p > t + 200) break;
      continue;
    }
    // First column: up to the first " | " that is not escaped ("\|").
    std::string first;
    for (size_t i = 1; i < row.size(); ++i) {
      if (row[i] == '|' && row[i - 1] != '\\') break;
      first += row[i];
    }
    static const std::regex flag_re("(^|[` ,])(--[a-z][a-z-]*|-[a-zA-Z])\\b");
    for (std::sregex_iterator it(first.begin(), first.end(), flag_re), e; it != e; ++it) in_table.insert((*it)[2]);
  }
  for (const auto* f : shown_flags(*build)) {
    bool ok = in_table.count("--" + f->name) || (f->short_name && in_table.count("-" + std::string(1, f->short_name)));
    if (!ok) problems.push_back("README.md build table: no row for --" + f->name);
  }
  for (const auto& n : in_table) {
    bool known = false;
    for (const auto* f : shown_flags(*build))
      if (n == "--" + f->name || (f->short_name && n == "-" + std::string(1, f->short_name))) known = true;
    if (!known) problems.push_back("README.md build table: " + n + " is not a flag of ocib build");
  }
  return problems;
}

}  // namespace ocib::cli
