#include "plan/planner_internal.h"
#include <algorithm>
#include <ctime>
#include <fcntl.h>
#include <sys/stat.h>

#include "base/fs.h"
#include "base/sha256.h"
#include "dockerfile/dockerignore.h"

namespace ocib::plan::detail {

Status Planner::plan_copy(StageState& st, const std::string& label, const dockerfile::Instruction& ins) {
  const std::string& kw = ins.keyword;
  auto bool_flag = [&](const char* name) {
    const auto* f = ins.flag(name);
    return f && f->value != "false";
  };
  std::vector<std::string> words;
  if (ins.json) {
    for (const auto& w : *ins.json) {
      OCIB_ASSIGN_OR_RETURN(std::string e, word(w, st, ins));
      words.push_back(e);
    }
  } else {
    for (const auto& w : ins.raw_words) {
      OCIB_ASSIGN_OR_RETURN(std::string e, word(w, st, ins));
      words.push_back(e);
    }
  }
  // Heredoc sources (`COPY <<EOF /dest`) become inline files, in order.
  std::vector<copy::InlineFile> inline_files;
  if (!ins.heredocs.empty() && !ins.json) {
    std::vector<std::string> kept;
    size_t next = 0;
    for (size_t i = 0; i < ins.raw_words.size(); ++i) {
      if (i + 1 < ins.raw_words.size() && dockerfile::parse_heredoc_word(ins.raw_words[i]) &&
          next < ins.heredocs.size()) {
        const auto& h = ins.heredocs[next++];
        std::string content = h.data();
        if (h.expand) {
          auto e = dockerfile::expand_raw(content, vars_for(st));
          if (!e.ok()) return at(ins, e.error().message());
          content = *e;
        }
        inline_files.push_back({h.name, content, std::nullopt, -1});
      } else {
        kept.push_back(words[i]);
      }
    }
    words = kept;
    words.insert(words.begin(), "");  // placeholder so the dest logic below still sees >= 2 words
  }
  if (words.size() < 2) return at(ins, kw + " requires at least two arguments");
  Step s;
  s.kind = Step::Kind::kCopy;
  s.loc = {df_->filename, ins.line, 0};
  s.name = label;
  s.stage = st.display;
  s.parent = st.top;
  std::string dest = words.back();
  words.pop_back();
  if (!inline_files.empty()) words.erase(words.begin());  // the placeholder
  s.copy.inline_files = inline_files;
  const std::vector<std::string> named_sources = words;  // as written (expanded), for the history
  if (kw == "COPY")
    for (const auto& w : words)
      if (w.rfind("http://", 0) == 0 || w.rfind("https://", 0) == 0) return at(ins, "source can't be a URL for COPY");
  std::string unpack_key;  // "", "true" or "false": ADD --unpack as given
  if (kw == "ADD") {
    std::string checksum;
    if (const auto* f = ins.flag("checksum")) {
      OCIB_ASSIGN_OR_RETURN(checksum, word(f->value, st, ins));
      if (checksum.rfind("sha256:", 0) != 0 || checksum.size() != 71 ||
          checksum.find_first_not_of("0123456789abcdef", 7) != std::string::npos)
        return at(ins, "invalid --checksum \"" + checksum + "\" (sha256:<64 hex digits>)");
    }
    // --unpack (BuildKit 1.17): true unpacks a URL's archive too; false copies local archives
    // as files.
    enum class Unpack { kDefault, kYes, kNo } unpack = Unpack::kDefault;
    if (const auto* f = ins.flag("unpack")) {
      OCIB_ASSIGN_OR_RETURN(std::string v, word(f->value, st, ins));
      if (v.empty() || v == "true") unpack = Unpack::kYes;
      else if (v == "false") unpack = Unpack::kNo;
      else return at(ins, "invalid --unpack value \"" + v + "\" (true or false)");
      unpack_key = unpack == Unpack::kYes ? "true" : "false";
    }
    if (ins.flag("keep-git-dir")) return at(ins, "ADD --keep-git-dir: ADD of git repositories is not supported yet");
    std::vector<std::string> local;
    size_t urls = 0;
    for (const auto& w : words) {
      if (is_git_url(w)) return at(ins, "ADD of git repositories is not supported yet");
      if (w.rfind("http://", 0) == 0 || w.rfind("https://", 0) == 0) {
        OCIB_ASSIGN_OR_RETURN(copy::InlineFile f, download(w, checksum, ins));
        f.unpack = unpack == Unpack::kYes;  // BuildKit: a URL is unpacked only when asked
        s.copy.inline_files.push_back(std::move(f));
        ++urls;
        continue;
      }
      if (w.find("://") != std::string::npos) return at(ins, "ADD " + w + ": unsupported URL scheme (http, https)");
      local.push_back(w);
    }
    if (!checksum.empty() && urls == 0) return at(ins, "checksum requires HTTP(S) or Git sources");
    words = std::move(local);
    s.copy.extract_archives = unpack != Unpack::kNo;
  }
  std::string wd = st.config.working_dir.empty() ? "/" : st.config.working_dir;
  bool dir_syntax = !dest.empty() && dest.back() == '/';
  std::string abs = !dest.empty() && dest.front() == '/' ? dest : fs::join(wd, dest);
  s.copy.dest = fs::clean(abs) + (dir_syntax && fs::clean(abs) != "/" ? "/" : "");
  // "." and "" (an empty word, e.g. an unset variable) name the working directory, as a
  // directory (BuildKit's pathRelativeToWorkingDir): with --link it does not exist yet.
  if (dest.empty() || dest == "." || dest == "./") s.copy.dest = fs::clean(wd) == "/" ? "/" : fs::clean(wd) + "/";
  s.copy.sources = words;
  std::string excludes;
  for (const auto& f : ins.flags) {
    if (f.name != "exclude") continue;
    OCIB_ASSIGN_OR_RETURN(std::string e, word(f.value, st, ins));
    excludes += e + "\n";
  }
  if (!excludes.empty()) {
    auto m = dockerfile::parse_dockerignore(excludes);
    if (!m.ok()) return at(ins, "invalid --exclude: " + m.error().message());
    auto mp = std::make_shared<dockerfile::Matcher>(std::move(m).value());
    s.copy.exclude.excluded = [mp](const std::string& rel, bool is_dir) { return mp->excluded(rel, is_dir); };
    s.copy.exclude.descend = [mp](const std::string& rel) { return mp->may_contain_included(rel); };
  }
  s.copy.parents = bool_flag("parents");
  const bool s_parents = s.copy.parents;
  std::string chown_shown, chmod_shown;
  bool link = bool_flag("link");
  if (const auto* f = ins.flag("chmod")) {
    // As BuildKit: expanded with the build args and environment; octal or symbolic ("go-w").
    OCIB_ASSIGN_OR_RETURN(std::string mode, word(f->value, st, ins));
    chmod_shown = mode;
    if (!mode.empty()) {
      auto spec = copy::ModeSpec::parse(mode);
      if (!spec.ok()) return at(ins, spec.error().message());
      s.copy.chmod = std::move(spec).value();
    }
  }
  if (const auto* f = ins.flag("chown")) {
    OCIB_ASSIGN_OR_RETURN(s.chown_spec, word(f->value, st, ins));
    chown_shown = s.chown_spec;
  }
  std::string src_key;
  bool from_stage = false;  // --from names a stage of this Dockerfile
  if (const auto* f = ins.flag("from")) {
    // As BuildKit: --from is not expanded; a value that would change under expansion is refused.
    auto unexpanded = dockerfile::process_word(f->value, {}, df_->escape);
    if (!unexpanded.ok()) return at(ins, unexpanded.error().message());
    if (*unexpanded != f->value)
      return at(ins, "variable expansion is not supported for --from, define a new stage with FROM using ARG "
                     "from global scope as a workaround");
    const std::string& ref = f->value;
    s.from_context = false;
    const NamedContext* nc = named_context(ref);
    if (nc && !nc->dir.empty()) {
      // A named local directory: copied like the main context (its own files and .dockerignore).
      s.from_context = true;
      s.context_dir = nc->dir;
      s.copy.filter = nc->filter;
      auto h = s.copy.sources.empty() ? Result<std::string>(std::string("none"))
                                      : sources_.hash(nc->fd->get(), s.copy.sources, hash_filter(s.copy), nullptr);
      if (h.ok() && !s.copy.sources.empty()) s.expected_sources = expected_sources(nc->fd, s.copy, *h);
      if (!h.ok()) {
        return at(ins, kw + " failed: " + h.error().message() + " in build context \"" + ref + "\"" +
                           (h.error().code() == Errc::kNotFound ? " (file not found)" : ""));
      }
      src_key = "named-context:" + *h;
    } else if (nc) {
      OCIB_ASSIGN_OR_RETURN(SourceImage img, load_base(nc->image, ins, st.platform));
      s.from_top = add_image_layers(img, nullptr, st.display, "[" + st.display + "] COPY --from=" + ref);
      src_key = "image:" + img.manifest_digest;
    } else if (auto from = stage_by_ref(ref, ins); from.ok()) {
      if (&plan_.stages[*from] == &st) return at(ins, "COPY --from cannot refer to its own stage");
      st.uses.push_back({*from, ins.line});
      OCIB_TRY(plan_stage(*from));
      s.from_top = plan_.stages[*from].top;
      from_stage = true;
      src_key = "stage:" + (s.from_top ? s.from_top->key : std::string("empty"));
    } else {
      // Not a stage: an image, resolved like a FROM base; its layers are the source view.
      OCIB_ASSIGN_OR_RETURN(SourceImage img, load_base(ref, ins, st.platform));
      s.from_top = add_image_layers(img, nullptr, st.display, "[" + st.display + "] COPY --from=" + ref);
      src_key = "image:" + img.manifest_digest;
    }
    if (s.from_top) s.deps.push_back(s.from_top);
  } else {
    s.copy.filter = req_.context_filter;
    auto h = s.copy.sources.empty() ? Result<std::string>(std::string("none"))
                                    : sources_.hash(req_.context_fd, s.copy.sources, hash_filter(s.copy), nullptr);
    if (h.ok() && !s.copy.sources.empty()) s.expected_sources = expected_sources(nullptr, s.copy, *h);
    if (!h.ok()) {
      return at(ins, kw + " failed: " + h.error().message() + " in build context" +
                         (h.error().code() == Errc::kNotFound ? " (file not found)" : ""));
    }
    src_key = "context:" + *h;
  }
  for (const auto& f : s.copy.inline_files)
    src_key += " inline:" + f.name + ":" + Sha256::hex(f.content) +
               (f.mode ? ":" + std::to_string(*f.mode) : "") + (f.mtime >= 0 ? "@" + std::to_string(f.mtime) : "");
  // --link: the layer is made on an empty root and keyed without the parent, unless --chown
  // names a user the parent's /etc/passwd must resolve.
  bool named_owner = s.chown_spec.find_first_not_of("0123456789:") != std::string::npos;
  if (link && named_owner) s.user_from = s.parent;
  if (link) s.parent = nullptr;
  json k = {{"v", kKeyVersion}, {"op", "copy"}, {"parent", s.parent ? s.parent->key : ""},
            {"src", src_key}, {"sources", s.copy.sources}, {"dest", s.copy.dest},
            {"chown", s.chown_spec}, {"chmod", s.copy.chmod && s.copy.chmod->octal() ? static_cast<int>(*s.copy.chmod->octal()) : -1}};
  if (s.copy.chmod && !s.copy.chmod->octal()) k["chmod_symbolic"] = s.copy.chmod->symbolic();
  if (kw == "ADD") k["add"] = true;
  if (!unpack_key.empty()) k["unpack"] = unpack_key;
  if (!excludes.empty()) k["exclude"] = excludes;
  if (s.copy.parents) k["parents"] = true;
  if (link) k["link"] = s.user_from ? s.user_from->key : "";
  std::vector<Step::KeyInput> key_inputs;
  if (s.parent) key_inputs.push_back({"/parent", s.parent, "", false, {}});
  // From a stage: keyed by the files it copies once the stage has run (effective_key).
  if (from_stage && s.from_top) key_inputs.push_back({"/src", s.from_top, "stage:", true, s.copy.sources});
  if (link && s.user_from) key_inputs.push_back({"/link", s.user_from, "", false, {}});
  set_key(s, k, std::move(key_inputs));
  if (s.parent) s.deps.push_back(s.parent);
  if (s.user_from) s.deps.push_back(s.user_from);
  Step* p = add_step(std::move(s));
  st.own_steps.push_back(p);
  if (link) {
    Step l;
    l.kind = Step::Kind::kLinked;
    l.name = label + " (link)";
    l.stage = st.display;
    l.parent = st.top;
    l.link_src = p;
    json lk = {{"v", kKeyVersion}, {"op", "linked"}, {"parent", st.top ? st.top->key : ""}, {"layer", p->key}};
    std::vector<Step::KeyInput> linked_inputs;
    if (st.top) linked_inputs.push_back({"/parent", st.top, "", false, {}});
    linked_inputs.push_back({"/layer", p, "", false, {}});
    set_key(l, lk, std::move(linked_inputs));
    // The planned key keeps its earlier spelling (stores stay warm); a run-time key is made
    // from `lk` (effective_key).
    l.key = Sha256::hex(std::string(kKeyVersion) + " linked " + (st.top ? st.top->key : "") + " " + p->key);
    if (l.parent) l.deps.push_back(l.parent);
    l.deps.push_back(p);
    l.copy.sources = p->copy.sources;
    p = add_step(std::move(l));
  }
  st.top = p;
  // History as BuildKit's dispatchCopy writes it: only --parents, --chown and --chmod, the
  // sources as written, heredocs as <<NAME, the destination as written.
  std::string created_by = kw;
  if (s_parents) created_by += " --parents";
  if (!chown_shown.empty()) created_by += " --chown=" + chown_shown;
  if (!chmod_shown.empty()) created_by += " --chmod=" + chmod_shown;
  for (const auto& w : named_sources) created_by += " " + w;
  for (const auto& f : inline_files) created_by += " <<" + f.name;
  created_by += " " + dest + " # buildkit";
  st.history.push_back({created_by, p, "", false});
  return {};

}

// The manifest a COPY from a context checks what it copies against (copy::CopyOp::expected),
// made when the step runs: planning only digests (a cached COPY of a big context builds no
// per-file manifest). The sources are digested again, with the hash cache; a digest other than
// the key's means the context changed after planning.
std::function<Result<std::shared_ptr<const copy::SourceManifest>>()> Planner::expected_sources(
    std::shared_ptr<UniqueFd> dir, const copy::CopyOp& op, const std::string& digest) const {
  Sources* sources = &sources_;
  int fd = dir ? dir->get() : req_.context_fd;
  struct timespec planned {};
  ::clock_gettime(CLOCK_REALTIME, &planned);
  return [sources, dir, fd, patterns = op.sources, filter = hash_filter(op), digest,
          planned]() -> Result<std::shared_ptr<const copy::SourceManifest>> {
    auto m = std::make_shared<copy::SourceManifest>();
    auto h = sources->hash(fd, patterns, filter, m.get());
    if (!h.ok()) return Error(Errc::kCorrupt, "build context changed during the build: " + h.error().message());
    if (*h == digest) return std::shared_ptr<const copy::SourceManifest>(std::move(m));
    // Named by what changed since planning (its inode's change time); a removed file is not
    // there to name.
    // Files first: a directory changes with its entries.
    std::vector<std::string> changed, dirs;
    for (const auto& [rel, fp] : m->entries) {
      struct stat st;
      if (::fstatat(fd, rel.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      if (st.st_ctim.tv_sec > planned.tv_sec ||
          (st.st_ctim.tv_sec == planned.tv_sec && st.st_ctim.tv_nsec >= planned.tv_nsec))
        (S_ISDIR(st.st_mode) ? dirs : changed).push_back(rel);
    }
    if (changed.empty()) changed = std::move(dirs);
    std::sort(changed.begin(), changed.end());
    std::string names;
    for (size_t i = 0; i < changed.size() && i < 3; ++i) names += (i ? ", " : "") + changed[i];
    if (changed.size() > 3) names += " and " + std::to_string(changed.size() - 3) + " more";
    return Error(Errc::kCorrupt, "build context changed during the build: " +
                                     (names.empty() ? std::string("its sources no longer match the step's cache key") : names));
  };
}

}  // namespace ocib::plan::detail
