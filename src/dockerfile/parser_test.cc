#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "dockerfile/dockerfile.h"

namespace ocib::dockerfile {
namespace {

Dockerfile ok(const std::string& text) {
  auto r = parse(text);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().str());
  return r.ok() ? std::move(r).value() : Dockerfile{};
}

std::string fail(const std::string& text) {
  auto r = parse(text);
  EXPECT_FALSE(r.ok()) << text;
  return r.ok() ? "" : r.error().str();
}

TEST(Parser, Basic) {
  Dockerfile d = ok("FROM alpine:3.19\nRUN echo hi\nCMD [\"sh\", \"-c\", \"echo\"]\n");
  ASSERT_EQ(d.stages.size(), 1u);
  const Stage& s = d.stages[0];
  EXPECT_EQ(s.index, 0);
  EXPECT_EQ(s.base, "alpine:3.19");
  EXPECT_EQ(s.name, "");
  EXPECT_EQ(s.from.keyword, "FROM");
  EXPECT_EQ(s.from.line, 1);
  ASSERT_EQ(s.body.size(), 2u);
  EXPECT_EQ(s.body[0].keyword, "RUN");
  EXPECT_EQ(s.body[0].rest, "echo hi");
  EXPECT_EQ(s.body[0].line, 2);
  EXPECT_FALSE(s.body[0].json);
  EXPECT_EQ(s.body[1].keyword, "CMD");
  ASSERT_TRUE(s.body[1].json);
  EXPECT_EQ(*s.body[1].json, (std::vector<std::string>{"sh", "-c", "echo"}));
  EXPECT_EQ(d.escape, '\\');
  EXPECT_EQ(d.filename, "Dockerfile");
}

TEST(Parser, KeywordsCaseInsensitive) {
  Dockerfile d = ok("from alpine\nrUn true\n");
  EXPECT_EQ(d.stages[0].from.keyword, "FROM");
  EXPECT_EQ(d.stages[0].body[0].keyword, "RUN");
}

TEST(Parser, UnknownInstruction) {
  std::string e = fail("FROM alpine\n\nFOO bar\n");
  EXPECT_EQ(e, "Dockerfile:3: unknown instruction: FOO (did you mean FROM?)");
  auto r = parse("FROM a\nfrob x\n", "sub/Containerfile");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(), "unknown instruction: FROB (did you mean FROM?)");
  ASSERT_TRUE(r.error().loc());
  EXPECT_EQ(r.error().loc()->file, "sub/Containerfile");
  EXPECT_EQ(r.error().loc()->line, 2);
}

TEST(Parser, MultiStage) {
  Dockerfile d =
      ok("FROM --platform=$BUILDPLATFORM golang:1.22 AS Build\n"
         "WORKDIR /src\n"
         "RUN go build -o /out/app .\n"
         "\n"
         "FROM scratch as final\n"
         "COPY --from=build /out/app /app\n"
         "FROM build\n");
  ASSERT_EQ(d.stages.size(), 3u);
  EXPECT_EQ(d.stages[0].name, "build");
  EXPECT_EQ(d.stages[0].base, "golang:1.22");
  EXPECT_EQ(d.stages[0].platform, "$BUILDPLATFORM");
  EXPECT_EQ(d.stages[0].body.size(), 2u);
  EXPECT_EQ(d.stages[1].index, 1);
  EXPECT_EQ(d.stages[1].name, "final");
  EXPECT_EQ(d.stages[1].base, "scratch");
  EXPECT_EQ(d.stages[1].from.line, 5);
  const Instruction& copy = d.stages[1].body[0];
  ASSERT_NE(copy.flag("from"), nullptr);
  EXPECT_EQ(copy.flag("from")->value, "build");
  EXPECT_EQ(copy.flag("chown"), nullptr);
  EXPECT_EQ(copy.words, (std::vector<std::string>{"/out/app", "/app"}));
  EXPECT_EQ(d.stages[2].base, "build");
  EXPECT_EQ(d.stages[2].body.size(), 0u);
}

TEST(Parser, MalformedFrom) {
  EXPECT_EQ(fail("FROM a b\n"), "Dockerfile:1: FROM requires either one or three arguments");
  EXPECT_EQ(fail("FROM a AS\n"), "Dockerfile:1: FROM requires either one or three arguments");
  EXPECT_EQ(fail("FROM\n"), "Dockerfile:1: FROM requires either one or three arguments");
  EXPECT_EQ(fail("FROM a foo b\n"), "Dockerfile:1: FROM requires either one or three arguments");
  EXPECT_NE(fail("FROM a AS 1x\n").find("Dockerfile:1: invalid name for build stage"),
            std::string::npos);
  EXPECT_NE(fail("FROM a AS b$c\n").find("invalid name for build stage"), std::string::npos);
  EXPECT_EQ(fail("FROM --foo=x a\n"), "Dockerfile:1:6: unknown flag: --foo for FROM");
}

TEST(Parser, InstructionBeforeFrom) {
  EXPECT_EQ(fail("# comment\nRUN true\nFROM a\n"),
            "Dockerfile:2: no build stage in current context");
  Dockerfile d = ok("ARG TAG=3.19\nARG BASE\nFROM alpine:${TAG}\nARG TAG\n");
  ASSERT_EQ(d.meta_args.size(), 2u);
  EXPECT_EQ(d.meta_args[0].kvs[0].first, "TAG");
  EXPECT_EQ(d.meta_args[0].kvs[0].second, "3.19");
  EXPECT_EQ(d.meta_args[1].kvs[0].first, "BASE");
  EXPECT_FALSE(d.meta_args[1].kvs[0].second);
  EXPECT_EQ(d.stages[0].base, "alpine:${TAG}");
  ASSERT_EQ(d.stages[0].body.size(), 1u);
  EXPECT_EQ(d.stages[0].body[0].keyword, "ARG");
  EXPECT_NE(fail("").find("file with no instructions"), std::string::npos);
  EXPECT_NE(fail("ARG A\n").find("no stages"), std::string::npos);
}

TEST(Parser, CommentsAndContinuations) {
  Dockerfile d =
      ok("# leading comment\n"
         "FROM alpine\n"
         "   # indented comment\n"
         "RUN apt-get update && \\\n"
         "    # comment inside\n"
         "\n"
         "    apt-get install -y \\   \n"
         "      curl\n"
         "RUN echo a\\\n"
         "b\n");
  ASSERT_EQ(d.stages[0].body.size(), 2u);
  const Instruction& run = d.stages[0].body[0];
  EXPECT_EQ(run.line, 4);
  EXPECT_EQ(run.end_line, 8);
  EXPECT_EQ(run.rest, "apt-get update &&     apt-get install -y       curl");
  EXPECT_EQ(run.original, "RUN apt-get update &&     apt-get install -y       curl");
  // The next line is appended directly: no space is inserted.
  EXPECT_EQ(d.stages[0].body[1].rest, "echo ab");
  EXPECT_EQ(d.stages[0].body[1].line, 9);
}

TEST(Parser, ContinuationAtEndOfFile) {
  Dockerfile d = ok("FROM a\nRUN echo \\\n");
  EXPECT_EQ(d.stages[0].body[0].rest, "echo");
}

TEST(Parser, HashInsideInstructionIsNotAComment) {
  Dockerfile d = ok("FROM a\nRUN echo # not a comment\n");
  EXPECT_EQ(d.stages[0].body[0].rest, "echo # not a comment");
}

TEST(Parser, Crlf) {
  Dockerfile d = ok("FROM alpine\r\nRUN echo a \\\r\n  b\r\nENV A=1\r\n");
  ASSERT_EQ(d.stages[0].body.size(), 2u);
  EXPECT_EQ(d.stages[0].body[0].rest, "echo a   b");
  EXPECT_EQ(d.stages[0].body[1].kvs[0].second, "1");
  Dockerfile bom =
      ok("\xEF\xBB\xBF"
         "FROM a\n");
  EXPECT_EQ(bom.stages.size(), 1u);
}

TEST(Parser, EscapeDirective) {
  Dockerfile d =
      ok("# escape=`\n"
         "FROM mcr.microsoft.com/windows\n"
         "RUN dir C:\\ `\n"
         "    && echo done\n"
         "COPY a\\b C:\\dst\\\n");
  EXPECT_EQ(d.escape, '`');
  ASSERT_EQ(d.stages[0].body.size(), 2u);
  EXPECT_EQ(d.stages[0].body[0].rest, "dir C:\\     && echo done");
  EXPECT_EQ(d.stages[0].body[1].words, (std::vector<std::string>{"a\\b", "C:\\dst\\"}));

  Dockerfile up = ok("#ESCAPE = \\\nFROM a\n");
  EXPECT_EQ(up.escape, '\\');
  EXPECT_EQ(fail("# escape=x\nFROM a\n"),
            "Dockerfile:1: invalid escape token 'x' does not match ` or \\");
  EXPECT_EQ(fail("# escape=`\n# escape=`\nFROM a\n"),
            "Dockerfile:2: only one escape parser directive can be used");
}

TEST(Parser, DirectivesOnlyAtTop) {
  // After a comment, blank line or instruction, a directive is a plain comment.
  EXPECT_EQ(ok("# hello\n# escape=`\nFROM a\n").escape, '\\');
  EXPECT_EQ(ok("\n# escape=`\nFROM a\n").escape, '\\');
  EXPECT_EQ(ok("FROM a\n# escape=`\n").escape, '\\');
  Dockerfile d = ok("# syntax=docker/dockerfile:1\n# check=skip=all\n#escape=`\nFROM a\n");
  EXPECT_EQ(d.syntax, "docker/dockerfile:1");
  EXPECT_EQ(d.check, "skip=all");
  EXPECT_EQ(d.escape, '`');
}

TEST(Parser, Flags) {
  Dockerfile d =
      ok("FROM a\n"
         "RUN --mount=type=cache,target=/root/.cache --mount=type=tmpfs,target=/t "
         "--network=none make\n"
         "COPY --chown=1000:1000 --chmod=0755 --link src /dst\n"
         "ADD --checksum=sha256:abc --keep-git-dir=true https://x/y /z\n"
         "HEALTHCHECK --interval=5s --retries=3 CMD curl -f http://localhost/\n");
  const auto& b = d.stages[0].body;
  ASSERT_EQ(b[0].flags.size(), 3u);
  EXPECT_EQ(b[0].flags[0].name, "mount");
  EXPECT_EQ(b[0].flags[0].value, "type=cache,target=/root/.cache");
  EXPECT_EQ(b[0].flags[2].value, "none");
  EXPECT_EQ(b[0].rest, "make");
  EXPECT_EQ(b[1].flag("chmod")->value, "0755");
  ASSERT_NE(b[1].flag("link"), nullptr);
  EXPECT_EQ(b[1].flag("link")->value, "");
  EXPECT_EQ(b[2].flag("keep-git-dir")->value, "true");
  EXPECT_EQ(b[2].words, (std::vector<std::string>{"https://x/y", "/z"}));
  EXPECT_EQ(b[3].flag("interval")->value, "5s");
  EXPECT_EQ(b[3].words, (std::vector<std::string>{"CMD", "curl -f http://localhost/"}));

  EXPECT_EQ(fail("FROM a\nRUN --xyz=1 true\n"), "Dockerfile:2:5: unknown flag: --xyz for RUN");
  EXPECT_EQ(fail("FROM a\nCOPY --from=a --from=b x y\n"),
            "Dockerfile:2:15: duplicate flag specified: --from");
  EXPECT_EQ(fail("FROM a\nCOPY --from x y\n"), "Dockerfile:2:6: missing a value on flag: --from");
  EXPECT_NE(fail("FROM a\nCOPY --link=maybe x y\n").find("expecting boolean value"),
            std::string::npos);
  EXPECT_EQ(fail("FROM a\nADD --from=x a b\n"), "Dockerfile:2:5: unknown flag: --from for ADD");
  // Instructions without flags keep `--x` as an argument.
  Dockerfile c = ok("FROM a\nCMD --help\nENTRYPOINT --x\n");
  EXPECT_EQ(c.stages[0].body[0].rest, "--help");
  EXPECT_TRUE(c.stages[0].body[0].flags.empty());
  // "--" ends the flags; a quoted flag value loses its quotes.
  Dockerfile q = ok("FROM a\nRUN --network=\"host\" -- --weird\n");
  EXPECT_EQ(q.stages[0].body[0].flags[0].value, "host");
  EXPECT_EQ(q.stages[0].body[0].rest, "--weird");
}

TEST(Parser, JsonAndShellForms) {
  Dockerfile d =
      ok("FROM a\n"
         "RUN [not json\n"
         "RUN [\"echo\", \"a b\"]\n"
         "ENTRYPOINT [\"/bin/app\"]\n"
         "CMD [ \"x\" ] trailing\n"
         "SHELL [\"/bin/bash\", \"-c\"]\n"
         "COPY [\"a b\", \"/dst/\"]\n"
         "VOLUME [\"/data\", \"/logs\"]\n"
         "VOLUME /one /two\n"
         "CMD {\"a\": 1}\n");
  const auto& b = d.stages[0].body;
  EXPECT_FALSE(b[0].json);
  EXPECT_EQ(b[0].rest, "[not json");
  EXPECT_EQ(*b[1].json, (std::vector<std::string>{"echo", "a b"}));
  EXPECT_EQ(*b[2].json, (std::vector<std::string>{"/bin/app"}));
  EXPECT_FALSE(b[3].json);
  EXPECT_EQ(*b[4].json, (std::vector<std::string>{"/bin/bash", "-c"}));
  EXPECT_EQ(*b[5].json, (std::vector<std::string>{"a b", "/dst/"}));
  EXPECT_EQ(*b[6].json, (std::vector<std::string>{"/data", "/logs"}));
  EXPECT_FALSE(b[7].json);
  EXPECT_EQ(b[7].words, (std::vector<std::string>{"/one", "/two"}));
  EXPECT_FALSE(b[8].json);

  EXPECT_EQ(fail("FROM a\nCMD [\"a\", 1]\n"),
            "Dockerfile:2: when using JSON array syntax, arrays must be comprised of strings "
            "only");
  EXPECT_EQ(fail("FROM a\nSHELL /bin/sh -c\n"),
            "Dockerfile:2: SHELL requires the arguments to be in JSON form");
}

TEST(Parser, EnvAndLabel) {
  Dockerfile d =
      ok("FROM a\n"
         "ENV K=V K2=\"quoted v\" K3=a\\ b K4='$NOT' K5=$B\n"
         "ENV LEGACY value with   spaces\n"
         "LABEL \"com.example.vendor\"=\"ACME Inc\" version=1.0\n"
         "LABEL multi=\"a \\\n"
         "b\"\n"
         "ENV E=\n");
  const auto& b = d.stages[0].body;
  using KV = std::pair<std::string, std::optional<std::string>>;
  EXPECT_EQ(b[0].kvs,
            (std::vector<KV>{
                {"K", "V"}, {"K2", "quoted v"}, {"K3", "a b"}, {"K4", "$NOT"}, {"K5", "$B"}}));
  EXPECT_EQ(b[0].raw_kvs[1], (KV{"K2", "\"quoted v\""}));
  EXPECT_EQ(b[0].raw_kvs[3], (KV{"K4", "'$NOT'"}));
  EXPECT_EQ(b[1].kvs, (std::vector<KV>{{"LEGACY", "value with   spaces"}}));
  EXPECT_EQ(b[2].kvs, (std::vector<KV>{{"com.example.vendor", "ACME Inc"}, {"version", "1.0"}}));
  EXPECT_EQ(b[3].kvs, (std::vector<KV>{{"multi", "a b"}}));
  EXPECT_EQ(b[4].kvs, (std::vector<KV>{{"E", ""}}));

  EXPECT_EQ(fail("FROM a\nENV ONLYKEY\n"), "Dockerfile:2: ENV must have two arguments");
  EXPECT_EQ(fail("FROM a\nENV\n"), "Dockerfile:2: ENV requires at least one argument");
  EXPECT_NE(fail("FROM a\nENV A=1 B\n").find("Dockerfile:2: Syntax error - can't find = in"),
            std::string::npos);
  EXPECT_EQ(fail("FROM a\nENV =x\n"), "Dockerfile:2: ENV names can not be blank");
}

TEST(Parser, Arg) {
  Dockerfile d = ok("FROM a\nARG A B=2 C=\"x y\"\n");
  using KV = std::pair<std::string, std::optional<std::string>>;
  EXPECT_EQ(d.stages[0].body[0].kvs,
            (std::vector<KV>{{"A", std::nullopt}, {"B", "2"}, {"C", "x y"}}));
  EXPECT_EQ(fail("FROM a\nARG\n"), "Dockerfile:2: ARG requires at least one argument");
}

TEST(Parser, WordsInstructions) {
  Dockerfile d =
      ok("FROM a\n"
         "EXPOSE 80/tcp 443\n"
         "USER app:app\n"
         "WORKDIR /app/$DIR\n"
         "WORKDIR \"/with space\"\n"
         "STOPSIGNAL SIGTERM\n"
         "COPY \"a b\" $SRC /dst/\n"
         "MAINTAINER Jane Doe <jane@example.com>\n"
         "ONBUILD RUN make\n"
         "HEALTHCHECK NONE\n"
         "HEALTHCHECK CMD [\"true\"]\n");
  const auto& b = d.stages[0].body;
  EXPECT_EQ(b[0].words, (std::vector<std::string>{"80/tcp", "443"}));
  EXPECT_EQ(b[1].words, (std::vector<std::string>{"app:app"}));
  EXPECT_EQ(b[2].words, (std::vector<std::string>{"/app/$DIR"}));
  EXPECT_EQ(b[3].words, (std::vector<std::string>{"/with space"}));
  EXPECT_EQ(b[3].raw_words, (std::vector<std::string>{"\"/with space\""}));
  EXPECT_EQ(b[4].words, (std::vector<std::string>{"SIGTERM"}));
  EXPECT_EQ(b[5].words, (std::vector<std::string>{"a b", "$SRC", "/dst/"}));
  EXPECT_EQ(b[5].raw_words, (std::vector<std::string>{"\"a b\"", "$SRC", "/dst/"}));
  EXPECT_EQ(b[6].keyword, "MAINTAINER");
  EXPECT_EQ(b[6].rest, "Jane Doe <jane@example.com>");
  EXPECT_EQ(b[7].keyword, "ONBUILD");
  EXPECT_EQ(b[7].rest, "RUN make");
  EXPECT_EQ(b[8].words, (std::vector<std::string>{"NONE"}));
  EXPECT_EQ(b[9].words, (std::vector<std::string>{"CMD"}));
  EXPECT_EQ(*b[9].json, (std::vector<std::string>{"true"}));

  EXPECT_EQ(fail("FROM a\nCOPY onlyone\n"),
            "Dockerfile:2: COPY requires at least two arguments, but only one was provided. "
            "Destination could not be determined.");
  EXPECT_NE(fail("FROM a\nADD [\"x\"]\n").find("ADD requires at least two"), std::string::npos);
  EXPECT_EQ(fail("FROM a\nWORKDIR\n"), "Dockerfile:2: WORKDIR requires exactly one argument");
  EXPECT_EQ(fail("FROM a\nONBUILD ONBUILD RUN x\n"),
            "Dockerfile:2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
  EXPECT_EQ(fail("FROM a\nONBUILD FROM x\n"),
            "Dockerfile:2: FROM isn't allowed as an ONBUILD trigger");
  EXPECT_EQ(fail("FROM a\nONBUILD FOO x\n"),
            "Dockerfile:2: unknown instruction: FOO (did you mean FROM?)");
  EXPECT_NE(fail("FROM a\nHEALTHCHECK BOGUS\n").find("Unknown type"), std::string::npos);
}

TEST(Parser, Heredocs) {
  Dockerfile d = ok(
      "FROM a\n"
      "RUN <<EOF\n"
      "echo hi\n"
      "  EOF\n"
      "EOF\n"
      "RUN <<-\"EOT\" python3 - <<'PY' \n"
      "\t\techo $A\n"
      "\tEOT\n"
      "print(1)\n"
      "PY\n"
      "COPY <<EOF /etc/x\n"
      "#!/bin/sh\n"
      "EOF\n"
      "RUN cat <<<hi\n");
  const auto& b = d.stages[0].body;
  ASSERT_EQ(b.size(), 4u);
  ASSERT_EQ(b[0].heredocs.size(), 1u);
  EXPECT_EQ(b[0].heredocs[0].name, "EOF");
  EXPECT_EQ(b[0].heredocs[0].content, "echo hi\n  EOF\n");
  EXPECT_TRUE(b[0].heredocs[0].expand);
  EXPECT_FALSE(b[0].heredocs[0].chomp);
  EXPECT_EQ(b[0].rest, "<<EOF");
  EXPECT_TRUE(parse_heredoc_word(b[0].rest));
  EXPECT_EQ(b[0].line, 2);
  EXPECT_EQ(b[0].end_line, 5);
  ASSERT_EQ(b[1].heredocs.size(), 2u);
  EXPECT_EQ(b[1].heredocs[0].name, "EOT");
  EXPECT_EQ(b[1].heredocs[0].content, "\t\techo $A\n");
  EXPECT_EQ(b[1].heredocs[0].data(), "echo $A\n");
  EXPECT_FALSE(b[1].heredocs[0].expand);
  EXPECT_TRUE(b[1].heredocs[0].chomp);
  EXPECT_EQ(b[1].heredocs[1].name, "PY");
  EXPECT_FALSE(b[1].heredocs[1].expand);
  EXPECT_EQ(b[1].heredocs[1].content, "print(1)\n");
  EXPECT_FALSE(parse_heredoc_word(b[1].rest));
  EXPECT_EQ(b[2].words, (std::vector<std::string>{"<<EOF", "/etc/x"}));
  EXPECT_EQ(b[2].heredocs[0].content, "#!/bin/sh\n");
  EXPECT_TRUE(b[3].heredocs.empty());
  EXPECT_EQ(b[3].rest, "cat <<<hi");

  // CRLF bodies keep their "\r\n"; the terminator may end in "\r\n".
  Dockerfile c = ok("FROM a\r\nRUN <<EOF\r\nx\r\nEOF\r\nRUN y\r\n");
  EXPECT_EQ(c.stages[0].body[0].heredocs[0].content, "x\r\n");
  EXPECT_EQ(c.stages[0].body[1].rest, "y");
  // JSON form and other instructions take no heredocs.
  Dockerfile j = ok("FROM a\nRUN [\"cat\", \"<<EOF\"]\nCMD cat <<EOF\n");
  EXPECT_TRUE(j.stages[0].body[0].heredocs.empty());
  EXPECT_EQ(j.stages[0].body.size(), 2u);
  // ONBUILD triggers collect heredocs too.
  Dockerfile o = ok("FROM a\nONBUILD RUN <<EOF\nx\nEOF\n");
  ASSERT_EQ(o.stages[0].body.size(), 1u);
  EXPECT_EQ(o.stages[0].body[0].heredocs[0].content, "x\n");

  EXPECT_EQ(fail("FROM a\nRUN <<EOF\necho\n"), "Dockerfile:2: unterminated heredoc");
  EXPECT_EQ(fail("FROM a\nCOPY x <<EOF\nEOF\n"),
            "Dockerfile:2: COPY cannot accept a heredoc as a destination");
}

TEST(Parser, HeredocWord) {
  auto h = parse_heredoc_word("2<<-'E O'");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->name, "E O");
  EXPECT_TRUE(h->chomp);
  EXPECT_FALSE(h->expand);
  EXPECT_TRUE(parse_heredoc_word("<<E\"O\"F"));
  EXPECT_FALSE(parse_heredoc_word("<<E\"O\"F")->expand);
  EXPECT_EQ(parse_heredoc_word("<<E\"O\"F")->name, "EOF");
  EXPECT_FALSE(parse_heredoc_word("<<"));
  EXPECT_FALSE(parse_heredoc_word("<<<x"));
  EXPECT_FALSE(parse_heredoc_word("a<<x"));
  EXPECT_FALSE(parse_heredoc_word("<<a b"));
}

TEST(Parser, ErrorColumnsAndSuggestions) {
  std::string text = "FROM a AS build\nFROM b\n\n\n\n\nCOPY --frm=build /a /b\n";
  auto r = parse(text);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().str(), "Dockerfile:7:6: unknown flag: --frm for COPY (did you mean from?)");
  EXPECT_EQ(render_error_context(text, r.error()), "COPY --frm=build /a /b\n     ^\n");
  // The flag on a continuation line: that physical line and column.
  auto c = parse("FROM a\nRUN --network=none \\\n  \t--mnt=type=cache x\n");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().str(),
            "Dockerfile:3:4: unknown flag: --mnt for RUN (did you mean mount?)");
  EXPECT_EQ(fail("FROM a\n  FORM b\n"),
            "Dockerfile:2: unknown instruction: FORM (did you mean FROM?)");
  EXPECT_EQ(fail("FROM a\nXYZZY b\n"), "Dockerfile:2: unknown instruction: XYZZY");
  auto u = parse("FROM a\n\t  FORM b\n");
  EXPECT_EQ(render_error_context("FROM a\n\t  FORM b\n", u.error()), "\t  FORM b\n\t  ^\n");
  EXPECT_EQ(render_error_context("x", Error::invalid("no loc")), "");
}

// The offending line is untrusted: a huge one must not give a huge error, and terminal escape
// sequences in it must not reach the terminal.
TEST(Parser, ErrorsBoundAndEscapeTheOffendingLine) {
  std::string huge = "FROM scratch\nFOO" + std::string(2'000'000, 'A') + "\n";
  auto r = parse(huge);
  ASSERT_FALSE(r.ok());
  std::string shown = r.error().str() + "\n" + render_error_context(huge, r.error());
  EXPECT_LT(shown.size(), 1000u) << shown.substr(0, 300);
  EXPECT_NE(r.error().message().find("... (2000003 bytes)"), std::string::npos) << r.error().message().substr(0, 300);
  std::string ctx = render_error_context(huge, r.error());
  EXPECT_EQ(ctx, "FOO" + std::string(kErrorLineWindow - 3, 'A') + "... (line of 2000003 bytes)\n^\n");

  // A long line with the error far to the right: a window around the column, caret under it.
  std::string wide = "FROM a\nCOPY " + std::string(1000, 'x') + " --frm=b /a /b\n";
  auto w = parse("FROM a\nCOPY --frm=b " + std::string(1000, 'x') + "\n");
  ASSERT_FALSE(w.ok());
  Error at_col = Error::at(SourceLoc{"Dockerfile", 2, 1007}, "x");
  std::string c = render_error_context(wide, at_col);
  size_t nl = c.find('\n');
  ASSERT_NE(nl, std::string::npos);
  std::string line = c.substr(0, nl), caret = c.substr(nl + 1);
  EXPECT_EQ(line.substr(0, 3), "...");
  EXPECT_NE(line.find(" (line of 1019 bytes)"), std::string::npos) << line;
  EXPECT_LT(line.size(), kErrorLineWindow + 40);
  size_t pos = caret.find('^');
  ASSERT_NE(pos, std::string::npos);
  EXPECT_EQ(line.substr(pos, 6), "--frm=") << c;

  // Control characters: escaped in the message and in the context, the caret still lines up.
  std::string esc = "FROM a\nRUN \x1b]0;pwned\x07 --fo=1 true\n";
  std::string esc_df = "FROM a\nRUN --fo\x1b]0;pwned\x07=1 true\n";
  auto e = parse(esc_df);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().str(), "Dockerfile:2:5: unknown flag: --fo\\x1b]0;pwned\\x07 for RUN");
  EXPECT_EQ(render_error_context(esc_df, e.error()), "RUN --fo\\x1b]0;pwned\\x07=1 true\n    ^\n");
  Error later = Error::at(SourceLoc{"Dockerfile", 2, 16}, "x");  // the "--fo" after the escapes
  std::string lc = render_error_context(esc, later);
  EXPECT_EQ(lc, "RUN \\x1b]0;pwned\\x07 --fo=1 true\n" + std::string(21, ' ') + "^\n");
  EXPECT_EQ(lc.substr(21, 4), "--fo");
  std::string env = fail("FROM a\nENV a=b \x1b[31mred\n");
  EXPECT_EQ(env, "Dockerfile:2: Syntax error - can't find = in \"\\x1b[31mred\". Must be of the form: name=value");
  for (char ch : env + render_error_context("FROM a\nENV a=b \x1b[31mred\n", parse("FROM a\nENV a=b \x1b[31mred\n").error()))
    EXPECT_TRUE(ch == '\n' || static_cast<unsigned char>(ch) >= 0x20) << int(ch);
}

TEST(Parser, BacktickEscapeKeepsBackslashes) {
  Dockerfile d = ok("# escape=`\nFROM a\nWORKDIR C:\\\nENV P=C:\\x Q=a` b\n");
  const auto& b = d.stages[0].body;
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b[0].words, (std::vector<std::string>{"C:\\"}));
  using KV = std::pair<std::string, std::optional<std::string>>;
  EXPECT_EQ(b[1].kvs, (std::vector<KV>{{"P", "C:\\x"}, {"Q", "a b"}}));
}

TEST(Parser, RawValuesForLaterExpansion) {
  Dockerfile d = ok("FROM a\nENV A=\"x \\\"q\\\"\" B='$HOME' C=\"$HOME/bin\" D=\\$HOME\n");
  const Instruction& env = d.stages[0].body[0];
  EXPECT_EQ(*env.kvs[0].second, "x \"q\"");
  const std::map<std::string, std::string> vars = {{"HOME", "/root"}};
  auto value = [&](size_t i) {
    auto r = process_word(*env.raw_kvs[i].second, vars, d.escape);
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : "";
  };
  EXPECT_EQ(value(0), "x \"q\"");
  EXPECT_EQ(value(1), "$HOME");
  EXPECT_EQ(value(2), "/root/bin");
  EXPECT_EQ(value(3), "$HOME");
}

// Fuzz finding 1: nlohmann::json::dump() threw type_error 316 on invalid UTF-8 taken from the
// Dockerfile; to_json() now replaces invalid sequences with U+FFFD.
TEST(Parser, FuzzInvalidUtf8InJsonDump) {
  Dockerfile d = ok("FROM \x9e\x8a\x8c\x8b" "box\nRUN echo \xc3\xa9 \xc3\n");
  std::string dumped;
  EXPECT_NO_THROW(dumped = to_json(d).dump());
  EXPECT_NE(dumped.find("\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD" "box"), std::string::npos);
  EXPECT_NE(dumped.find("echo \xc3\xa9 \xEF\xBF\xBD"), std::string::npos);
  EXPECT_EQ(d.stages[0].base, "\x9e\x8a\x8c\x8b" "box");  // the AST keeps the bytes
}

}  // namespace
}  // namespace ocib::dockerfile
