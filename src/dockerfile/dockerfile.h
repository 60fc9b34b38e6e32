#pragma once
// Dockerfile frontend: text -> AST, with no side effects. Expansion of variables happens later,
// in the build composition, through expand().

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "base/error.h"

namespace ocib::dockerfile {

/// A heredoc (`<<EOF`, `<<-EOF`, `<<"EOF"`, `2<<EOF`) named in a RUN/COPY/ADD instruction (or an
/// ONBUILD RUN/COPY/ADD trigger) in shell form. Its body is the physical lines after the
/// instruction up to a line equal to `name` (for `<<-`, after removing the line's leading tabs;
/// trailing "\r\n"/"\n" ignored). Several heredocs on one line take consecutive bodies, in order.
/// The heredoc words stay in `rest`/`words` as written ("<<EOF").
///
/// How the build must execute them (BuildKit's dockerfile2llb):
/// * RUN, when parse_heredoc_word(rest) is set (the whole command is one heredoc, e.g.
///   `RUN <<EOF` or `RUN --mount=... <<-EOF`): let script = heredocs[0].data().
///   - script starts with "#!" (and the target is not Windows): write it to a file named
///     heredocs[0].name, mode 0755, in a read-only directory mounted at /dev/pipes/ for this
///     step, and run argv {"/dev/pipes/<name>"} with NO shell prepended.
///   - otherwise: run the SHELL (default {"/bin/sh", "-c"}) with script as its one argument.
///   `expand` is ignored in both cases (the shell expands when it runs the script).
/// * RUN with other command text (`RUN python3 <<EOF`, `RUN cat <<A <<B > f`): pass the shell
///   the reconstituted text rest + for each heredoc: "\n" + content + name (raw content, not
///   data(): the shell itself handles `<<-`, quoting and expansion).
/// * COPY/ADD: every source word (all raw_words but the last) for which
///   parse_heredoc_word(word) is set is, in order, the next entry of `heredocs`: a file named
///   `name` with contents data(), mode 0644 (or --chmod), copied like a regular source
///   (`COPY <<EOF /etc/x` creates /etc/x; with a dest ending in "/" it creates dest/<name>).
///   When `expand` is true, variables in data() are first substituted with the build args/env
///   the way BuildKit's ExpandRaw does (expand_raw()); with `expand` false data() is used verbatim.
///   Other source words are ordinary context paths.
struct Heredoc {
  std::string name;     // terminator, quotes removed
  std::string content;  // body lines, each with its original line terminator
  bool expand = true;   // false when any part of the name was quoted (<<"EOF", <<'EOF')
  bool chomp = false;   // `<<-`: leading tabs are stripped (terminator and, via data(), body)

  /// content with the leading tabs of every line removed when chomp (BuildKit's
  /// ChompHeredocContent); content otherwise.
  std::string data() const;
};

/// BuildKit's ParseHeredoc on one raw word: `[digits]<<[-]NAME` where NAME is a single shell
/// word without '<'. Returns name/expand/chomp (content empty) or nullopt.
std::optional<Heredoc> parse_heredoc_word(std::string_view word);

struct Flag {
  std::string name;   // without leading "--": "from", "chown", "chmod", "network", "platform"
  std::string value;  // "" for a bare flag
};

/// One instruction after line continuations are joined and comments removed.
struct Instruction {
  std::string keyword;      // uppercase: "FROM", "RUN", ...
  int line = 0;             // 1-based line of the keyword
  int end_line = 0;         // last physical line (continuations and heredoc bodies)
  /// The instruction as written, trimmed. Continuations are joined as Docker does: the escape
  /// char (and trailing blanks) is removed and the next line appended directly, with no space
  /// added; comment and blank lines inside a continuation are dropped.
  std::string original;
  std::vector<Flag> flags;  // leading --name=value flags, in order
  /// Everything after the keyword and flags, whitespace-trimmed, continuations joined.
  std::string rest;
  /// Exec (JSON array) form for RUN/CMD/ENTRYPOINT/SHELL/COPY/ADD/VOLUME when `rest` is a
  /// valid JSON array of strings; nullopt means shell form.
  std::optional<std::vector<std::string>> json;
  /// Parsed key/value pairs for ENV, LABEL and ARG (ARG without value: second is nullopt).
  /// ENV/LABEL support both `K V` (single pair, value = rest of line) and `K=V K2="v 2"` forms;
  /// quotes are removed and escapes resolved as Docker does (unquote()). Values are NOT expanded.
  /// Because Docker expands *before* removing quotes ('$A' and \$A stay literal), a build that
  /// substitutes variables should use raw_kvs with process_word() instead.
  std::vector<std::pair<std::string, std::optional<std::string>>> kvs;
  /// kvs as written: quotes and escapes intact (input for process_word()).
  std::vector<std::pair<std::string, std::optional<std::string>>> raw_kvs;
  /// Words split at whitespace outside quotes, then unquote()d, for FROM (image [AS name]),
  /// COPY/ADD (sources..., dest) in shell form, EXPOSE, VOLUME in shell form. (BuildKit splits
  /// these at every whitespace; the results differ only for quoted words containing spaces.)
  /// USER, WORKDIR, STOPSIGNAL and MAINTAINER take the whole rest as one word, as Docker does
  /// (`WORKDIR /a b` is the directory "/a b").
  /// HEALTHCHECK: {"NONE"}, {"CMD"} with `json` set (exec form), or {"CMD", "<shell command>"}.
  std::vector<std::string> words;
  /// `words` as written: quotes and escapes intact (input for process_word()).
  std::vector<std::string> raw_words;
  /// Heredocs in the order they are named on the line (see Heredoc for how to run them).
  /// For ONBUILD they belong to the trigger.
  std::vector<Heredoc> heredocs;

  const Flag* flag(std::string_view name) const;
};

struct Stage {
  int index = 0;                  // 0-based
  std::string name;               // from `AS name` (lowercased), "" when unnamed
  std::string base;               // image or stage name as written (unexpanded), "scratch"
  std::string platform;           // --platform value, "" when absent
  Instruction from;               // the FROM instruction itself
  std::vector<Instruction> body;  // instructions after FROM, in order
};

struct Dockerfile {
  std::string filename;                // for error messages: "Dockerfile"
  std::vector<Instruction> meta_args;  // ARGs before the first FROM
  std::vector<Stage> stages;
  char escape = '\\';
  std::string syntax;  // `# syntax=` directive value, "" when absent
  std::string check;   // `# check=` directive value, "" when absent
};

/// Parses a Dockerfile. Errors carry SourceLoc{filename, line}: unknown instruction, flags not
/// allowed for the instruction, missing arguments, an instruction before the first FROM other
/// than ARG, a malformed FROM, an unterminated heredoc.
/// Flag errors also carry the 1-based column of the flag's "--" (and the physical line it is
/// on): "Dockerfile:7:6: unknown flag --frm for COPY (did you mean --from?)". Unknown
/// instructions and flags get a suggestion when one is within edit distance 2:
/// "unknown instruction: FORM (did you mean FROM?)".
/// Supported instructions (others are "unknown instruction: X"): FROM RUN CMD LABEL EXPOSE ENV
/// ADD COPY ENTRYPOINT VOLUME USER WORKDIR ARG STOPSIGNAL HEALTHCHECK SHELL ONBUILD MAINTAINER.
Result<Dockerfile> parse(std::string_view text, const std::string& filename = "Dockerfile");

/// Expands $V, ${V}, ${V:-w}, ${V:+w}, ${V-w}, ${V+w} using `vars` (unset -> empty), as
/// BuildKit's shell lexer does for FROM/COPY/ENV/LABEL/WORKDIR/USER/EXPOSE/ARG values.
/// `escape` escapes '$'. Quotes are kept as-is (this is word expansion before splitting).
/// Also ${V?msg} (error when unset), ${V#p} ${V##p} ${V%p} ${V%%p} (glob patterns) and
/// ${V/p/r} ${V//p/r}. Inside single quotes nothing is expanded; other escapes are kept as
/// written. Errors: "failed to process \"<s>\": syntax error: missing '}'" and the like.
Result<std::string> expand(std::string_view s, const std::map<std::string, std::string>& vars,
                           char escape = '\\');

/// BuildKit's ProcessWord: expands like expand(), then removes quotes and resolves escapes
/// (outside quotes the escape char makes the next char literal; inside "..." it escapes only
/// `"`, `$` and itself; '...' is fully literal). Use on raw_words / raw_kvs.
Result<std::string> process_word(std::string_view s, const std::map<std::string, std::string>& vars,
                                 char escape = '\\');

/// BuildKit's ExpandRaw (the body of an unquoted COPY/ADD heredoc): a lexer with '\\' as the
/// escape and SkipProcessQuotes, so quotes are ordinary characters (`'$A'` expands), the escape
/// makes the next character literal and is dropped (`\\` gives `\`, `\$A` gives `$A`).
Result<std::string> expand_raw(std::string_view s, const std::map<std::string, std::string>& vars);

/// BuildKit's ProcessWords (EXPOSE): process_word(), then split into words at whitespace outside
/// quotes, including whitespace an unquoted variable brings in: `$PORTS` with PORTS="80 443"
/// gives two words, `"$PORTS"` one.
Result<std::vector<std::string>> process_words(std::string_view s, const std::map<std::string, std::string>& vars,
                                               char escape = '\\');

/// Quote removal and escape resolution without expansion ($ stays literal).
Result<std::string> unquote(std::string_view s, char escape = '\\');

/// The source line an error points at plus a caret line, for the CLI to print under
/// Error::str(): "COPY --frm=build /a /b\n     ^\n". The caret is under loc()->col, or under the
/// first non-blank char when the column is unknown (0). Tabs before the column are kept so the
/// caret lines up. Returns "" when the error has no line inside `text`. Control characters are
/// shown escaped ("\x1b"); a line longer than kErrorLineWindow bytes is cut to that many around
/// the column, with "..." and " (line of N bytes)".
std::string render_error_context(std::string_view text, const Error& e);
inline constexpr size_t kErrorLineWindow = 200;

/// Canonical JSON dump of the AST (for the corpus tests and debugging). Empty fields are
/// omitted; raw_words/raw_kvs only appear when they differ from words/kvs.
nlohmann::json to_json(const Dockerfile& df);

/// `s` with every invalid UTF-8 sequence replaced by U+FFFD, as Go's encoding/json reads and
/// writes it (so BuildKit, for exec-form JSON and printed ASTs).
std::string utf8(std::string_view s);

}  // namespace ocib::dockerfile
