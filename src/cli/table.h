#pragma once
// ocib's command line as data: one table of commands and their flags. The parser, every
// `--help`, the OPTIONS sections of the man pages (docs/man/*.1.scd), the README's build
// option list and the bash/zsh/fish completions (completions/) are all made from it, so
// they cannot drift apart (table_test, ctest -R cli., diffs the committed files against the generators;
// `scripts/generate-cli.sh` rewrites them).
//
// The parser is ocib's own rather than CLI11's: the table must drive the help layout, the
// man pages and three completion dialects anyway, buildx's optional-value `--pull[=P]`,
// `--call check` and getopt's attached `-j4` need special cases in CLI11 too, and its error
// texts and exit codes would all have to be replaced by ocib's (`ocib: error: ...`, exit 2,
// `did you mean` from base/spec.h). What it parses is the table; nothing else knows flags.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ocib::cli {

enum class Arg {
  kNone,      // a switch: --push (also --push=true|false)
  kValue,     // --file FILE, --file=FILE, -f FILE, -fFILE
  kOptional,  // --pull alone, --pull=POLICY, or --pull POLICY when POLICY is one of the choices
};

enum class Complete { kNothing, kFile, kDir, kChoices };

struct Flag {
  std::string name;            // long name without "--"
  char short_name = 0;         // 'f' for -f, 0 for none
  Arg arg = Arg::kNone;
  std::string value;           // value name in help/man ("FILE"); "" for switches
  std::string help;            // --help text; '\n' starts a continuation line
  std::vector<std::string> choices;    // the values accepted (checked while parsing, with a suggestion)
  std::vector<std::string> completions;  // offered by the completions besides choices (spec prefixes)
  bool list = false;           // the value is a comma list whose parts must each be a choice
  bool repeatable = false;     // given several times, each counts (else the last wins)
  bool positive_int = false;   // the value must be a number >= 1
  Complete complete = Complete::kNothing;
  std::string implicit;        // kOptional: the value when given alone
  std::string config_key;      // the ocib.toml key that sets its default ("build.jobs"), if any
  std::string man;             // the man page's text for it (scdoc); empty: the help text
  bool hidden = false;         // parsed, in no help, man page or completion
};

struct Command {
  std::string name;            // "build"; a subcommand is "manifest create"
  std::string summary;         // one line for `ocib --help` ("Build an image from a Dockerfile")
  std::string usage;           // after "Usage: ocib NAME " ("[OPTIONS] CONTEXT")
  std::string description;     // paragraphs after the usage line in --help
  std::vector<Flag> flags;     // -h/--help is implicit
  std::string positional;      // what the positional arguments are (completion: "dir", "file", "json", "")
  int min_args = 0;
  int max_args = -1;           // -1: unlimited
  std::string examples;        // --help's Examples: section (lines without the indent)
  std::vector<std::string> subcommands;  // "manifest": create, inspect (each a Command "manifest create")
  bool hidden = false;
};

/// Every command, in `ocib --help` order (subcommands after their parent).
const std::vector<Command>& commands();
/// The command named `name` ("build", "manifest create"), or nullptr.
const Command* find_command(std::string_view name);

struct Occurrence {
  const Flag* flag;
  std::string value;  // "true"/"false" for switches; the implicit value for a bare kOptional
  std::string spelling;  // as written ("-t", "--tag")
};

struct Parsed {
  std::vector<Occurrence> flags;  // in command-line order
  std::vector<std::string> args;  // positional
  bool help = false;              // -h/--help was given
  /// The last value of flag `name`, if given.
  std::optional<std::string> last(std::string_view name) const;
  /// Every value of flag `name`, in order.
  std::vector<std::string> all(std::string_view name) const;
  bool has(std::string_view name) const { return last(name).has_value(); }
};

/// Parses `args` (what follows the command's name) against `cmd`'s flags. On a usage error
/// returns nullopt with `*error` set to the message (exit status 2, nothing done yet): an
/// unknown flag (with the closest one suggested), a missing value, a value not among the
/// choices (suggested), a value given to a switch, a count of positional arguments outside
/// the command's range.
std::optional<Parsed> parse(const Command& cmd, const std::vector<std::string>& args, std::string* error);

/// `ocib --help`, and `ocib CMD --help` in docker's layout (Usage:, Options:, Examples:).
std::string main_help();
/// The flag as the help's left column writes it: "-f, --file FILE", "    --pull[=POLICY]".
std::string flag_left(const Flag& f);
std::string help(const Command& cmd);

// Generators for the files kept in the repository (see scripts/generate-cli.sh).
std::string bash_completion();
std::string zsh_completion();
std::string fish_completion();
/// The OPTIONS section's generated part of docs/man/ocib-CMD.1.scd (between the markers).
std::string man_options(const Command& cmd);
/// `page` (a .scd file's text) with the text between its markers replaced by man_options of
/// the command the page documents; `page` unchanged when it has no markers.
std::string update_man_page(const std::string& page, const Command& cmd);
/// What README.md lacks or has too many against the table: every command in its Usage
/// block, every build flag in the first column of its `ocib build` table and no other flag
/// there. Empty when they agree.
std::vector<std::string> check_readme(const std::string& readme);

inline constexpr const char* kBeginMarker = "BEGIN GENERATED BY ocib __generate (edit src/cli/table.cc)";
inline constexpr const char* kEndMarker = "END GENERATED";

}  // namespace ocib::cli
