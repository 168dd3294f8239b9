#include "train/step_input.hpp"

#include "workload/tokens.hpp"

namespace minipt {

std::vector<int32_t> cu_seqlens_of(const StepPlan& plan, const Microbatch& mb) {
  std::vector<int32_t> cu{0};
  for (int idx : mb.sequences)
    cu.push_back(cu.back() + static_cast<int32_t>(plan.lengths[static_cast<size_t>(idx)]));
  return cu;
}

namespace {

MicrobatchData build_microbatch(const Config& cfg, int step, const StepPlan& plan,
                                const Microbatch& mb) {
  MicrobatchData d;
  const double n_seq = static_cast<double>(plan.lengths.size());
  d.cu_seqlens = cu_seqlens_of(plan, mb);
  for (int idx : mb.sequences) {
    const int64_t len = plan.lengths[static_cast<size_t>(idx)];
    const auto toks = sequence_tokens(cfg.run.seed, step, idx, len, cfg.model.vocab);
    const float w = len > 1 ? static_cast<float>(1.0 / static_cast<double>(len - 1) / n_seq) : 0.0f;
    for (int64_t i = 0; i < len; ++i) {
      d.tokens.push_back(toks[static_cast<size_t>(i)]);
      const bool last = i + 1 == len;
      d.targets.push_back(last ? -1 : toks[static_cast<size_t>(i + 1)]);
      d.loss_weight.push_back(last ? 0.0f : w);
    }
  }
  return d;
}

}  // namespace

StepInput load_step_input(const Config& cfg, int step, const StepPlan& plan, int rank,
                          std::vector<SequenceRecord>& sequences) {
  StepInput in;
  const RankPlan& mine = plan.ranks[static_cast<size_t>(rank)];
  for (size_t j = 0; j < mine.microbatches.size(); ++j) {
    const Microbatch& mb = mine.microbatches[j];
    in.data.push_back(build_microbatch(cfg, step, plan, mb));
    in.seq_ids.push_back(mb.sequences);
    in.tokens += mb.tokens;
    in.nonempty += mb.sequences.empty() ? 0 : 1;
    for (int idx : mb.sequences)
      sequences.push_back(
          {step, rank, static_cast<int32_t>(j), idx, plan.lengths[static_cast<size_t>(idx)]});
  }
  for (int64_t l : plan.lengths) {
    in.step_tokens += static_cast<double>(l);
    in.step_sum_sq += static_cast<double>(l) * static_cast<double>(l);
  }
  return in;
}

}  // namespace minipt
