#pragma once
// The planner's internals, shared by its files: planner.cc (stages, FROM, dispatch), run.cc
// (RUN and its mounts), copy_add.cc (COPY, ADD), config.cc (instructions that only change the
// image config, and WORKDIR). Not part of the plan module's interface.

#include <deque>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "plan/planner.h"

namespace ocib::plan::detail {

using nlohmann::json;

inline constexpr const char* kDefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The text a cache key is hashed from (see planner.cc).
std::string key_text(const json& k);
/// Sets s.key to the digest of `k` and keeps `k` and the places in it that hold other steps'
/// keys (Step::KeyInput), for effective_key().
void set_key(Step& s, const json& k, std::vector<Step::KeyInput> inputs);
std::string shell_join(const std::vector<std::string>& argv);
/// BuildKit's isGitURL for ADD sources.
bool is_git_url(const std::string& s);
inline bool has_glob(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

class Planner {
 public:
  Planner(const dockerfile::Dockerfile& df, const Request& req, Sources& sources)
      : df_(&df), req_(req), sources_(sources) {
    plan_.platform = req.platform;
  }
  Status plan();
  Plan take() { return std::move(plan_); }

 private:
  Status plan_stage(size_t index);
  Status plan_base_image(StageState& st, const dockerfile::Stage& stage, const std::string& ref);
  Result<SourceImage> load_base(const std::string& ref, const dockerfile::Instruction& ins,
                                const oci::Platform& platform);
  Step* add_image_layers(const SourceImage& img, Step* top, const std::string& display,
                         const std::string& name);
  Status run_onbuild_triggers(StageState& st, const dockerfile::Stage& stage,
                              const std::vector<std::string>& triggers);
  Result<copy::InlineFile> download(const std::string& url, const std::string& checksum,
                                    const dockerfile::Instruction& ins);
  Result<size_t> stage_by_ref(const std::string& ref, const dockerfile::Instruction& at) const;
  Status plan_instruction(StageState& st, const dockerfile::Stage& stage, size_t pos,
                          const dockerfile::Instruction& ins);
  // One per kind of instruction; `label` is the step name ("[stage 2/3] RUN ...").
  Status plan_run(StageState& st, const std::string& label, const dockerfile::Instruction& ins);
  Status plan_copy(StageState& st, const std::string& label, const dockerfile::Instruction& ins);
  Status plan_config(StageState& st, const dockerfile::Stage& stage, size_t pos, const std::string& label,
                     const dockerfile::Instruction& ins);
  /// Refuses flags the instruction does not take (the one table of them is in planner.cc).
  Status check_flags(const dockerfile::Instruction& ins) const;
  Result<RunMount> parse_mount(const std::string& spec, StageState& st, const dockerfile::Instruction& ins);
  std::map<std::string, std::string> vars_for(const StageState& st) const;
  copy::SourceFilter hash_filter(const copy::CopyOp& op) const;
  std::function<Result<std::shared_ptr<const copy::SourceManifest>>()> expected_sources(
      std::shared_ptr<UniqueFd> dir, const copy::CopyOp& op, const std::string& digest) const;
  Result<std::string> word(const std::string& raw, const StageState& st, const dockerfile::Instruction& ins) const;
  Step* add_step(Step s);
  size_t stage_index(const StageState& st) const { return static_cast<size_t>(&st - plan_.stages.data()); }
  /// A stage as BuildKit names it in messages: its name, "stage-N" when unnamed, "" when alone.
  std::string stage_name(size_t index) const;
  Error at(const dockerfile::Instruction& ins, const std::string& msg) const {
    return Error::at({df_->filename, ins.line, 0}, msg);
  }
  const NamedContext* named_context(const std::string& ref) const {
    std::string l = ref;
    std::transform(l.begin(), l.end(), l.begin(), ::tolower);
    auto it = req_.named_contexts.find(l);
    return it == req_.named_contexts.end() ? nullptr : &it->second;
  }

  const dockerfile::Dockerfile* df_;
  const Request& req_;
  Sources& sources_;
  Plan plan_;
  std::map<std::string, std::string> meta_args_;
  std::deque<dockerfile::Dockerfile> triggers_;  // parsed ONBUILD triggers, kept for their lifetime
  std::set<std::string> used_args_;
  bool host_network_warned_ = false;  // the network.host entitlement warning was given
  std::map<std::string, Step*> by_key_;
};

}  // namespace ocib::plan::detail
