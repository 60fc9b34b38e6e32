#pragma once
// Dockerfile frontend: text -> AST, with no side effects. Expansion of variables happens later,
// in the build composition, through expand().

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/error.h"

namespace ocib::dockerfile {

struct Flag {
  std::string name;   // without leading "--": "from", "chown", "chmod", "network", "platform"
  std::string value;  // "" for a bare flag
};

/// One instruction after line continuations are joined and comments removed.
struct Instruction {
  std::string keyword;      // uppercase: "FROM", "RUN", ...
  int line = 0;             // 1-based line of the keyword
  int end_line = 0;         // last physical line (continuations)
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
/// than ARG, a malformed FROM.
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

/// Quote removal and escape resolution without expansion ($ stays literal).
Result<std::string> unquote(std::string_view s, char escape = '\\');

}  // namespace ocib::dockerfile
