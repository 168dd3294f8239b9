#include "model/cost_model.hpp"

#include <cmath>
#include <numbers>

namespace minipt {

UnitKind unit_kind(const ModelShape& shape, int unit) {
  if (shape.is_embedding(unit)) return UnitKind::embedding;
  if (shape.is_head(unit)) return UnitKind::head;
  return UnitKind::block;
}

namespace {

const TimeFit& fit_of(const CostModel& m, int u, int pass) {
  const auto& fits = m.unit[static_cast<size_t>(unit_kind(m.shape, u))];
  return pass == 2 && !fits[2].present ? fits[0] : fits[static_cast<size_t>(pass)];
}

}  // namespace

double CostModel::unit_time(int u, int pass, int64_t tokens, double sum_sq) const {
  if (tokens <= 0) return 0.0;
  return fit_of(*this, u, pass).at(tokens, sum_sq);
}

double CostModel::unit_cv(int u, int pass) const { return fit_of(*this, u, pass).cv; }

double flops_unit_seconds(const ModelShape& shape, int unit, int pass, int64_t tokens,
                          double sum_sq, double peak_tflops) {
  const double factor = pass == 1 ? 2.0 : 1.0;
  return factor * shape.unit_forward_flops(unit, tokens, sum_sq) / (peak_tflops * 1e12);
}

LinkCost default_link(CommOp op, LinkClass c) {
  // H200 SXM: NCCL ring bus bandwidth and IPC one-sided rates measured by run/bench/comm
  // on two NVLink-connected H200 (93 MB rows of
  // run/bench/results/2026-11-27-gpu-comm-h200x2-run1.json); between nodes one 400 Gb/s
  // (50 GB/s) NIC per GPU, of which NCCL rings reach about 90% and RDMA one-sided transfers
  // about 80%; a device-local copy at 1.5 TB/s.
  LinkCost l;
  l.source = "default (H200 NVLink, 400 Gb/s NIC per GPU)";
  const bool small = op == CommOp::allreduce || op == CommOp::barrier;
  switch (c) {
    case LinkClass::self:
      l.latency_s = small ? 5e-6 : 10e-6;
      l.bandwidth_Bps = small ? 0 : 1.5e12;
      break;
    case LinkClass::intra:
      l.latency_s = small ? 10e-6 : 15e-6;
      l.bandwidth_Bps = op == CommOp::allgather        ? 230e9
                        : op == CommOp::reduce_scatter ? 215e9
                        : op == CommOp::get            ? 225e9
                        : op == CommOp::accumulate     ? 250e9
                                                       : 0;
      break;
    case LinkClass::inter:
      l.latency_s = small ? 15e-6 : 25e-6;
      l.bandwidth_Bps = op == CommOp::allgather || op == CommOp::reduce_scatter ? 45e9
                        : small                                                 ? 0
                                                                                : 40e9;
      break;
  }
  return l;
}

namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

double time_variation(const VariationKey& k, double cv) {
  if (k.seed == 0 || cv <= 0) return 1.0;
  uint64_t h = splitmix64(k.seed);
  for (int v : {k.step, k.rank, k.microbatch, k.unit, k.pass})
    h = splitmix64(h ^ static_cast<uint64_t>(static_cast<uint32_t>(v)));
  // Two uniforms in (0, 1) from the hash's halves, a standard normal by Box–Muller.
  const double u1 = (static_cast<double>(h >> 40) + 0.5) / 16777216.0;
  const double u2 = (static_cast<double>(splitmix64(h) >> 11) + 0.5) / 9007199254740992.0;
  const double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  // Lognormal of mean 1: σ² = ln(1 + cv²), μ = −σ²/2.
  const double var = std::log1p(cv * cv);
  return std::exp(std::sqrt(var) * z - 0.5 * var);
}

CostModel flops_cost_model(const ModelShape& shape, double peak_tflops, int param_bytes,
                           int grad_bytes) {
  CostModel m;
  m.shape = shape;
  const double peak = peak_tflops * 1e12;
  // unit_forward_flops is linear in tokens and ΣL²: read its two coefficients off.
  for (int k = 0; k < 3; ++k) {
    const int u = k == 0 ? 0 : (k == 1 ? 1 : shape.layers + 1);
    const double per_token = shape.unit_forward_flops(u, 1, 0.0);
    const double per_sq = shape.unit_forward_flops(u, 1, 1.0) - per_token;
    for (int p = 0; p < 3; ++p) {
      const double mult = p == 1 ? 2.0 : 1.0;
      TimeFit& f = m.unit[static_cast<size_t>(k)][static_cast<size_t>(p)];
      f.b = mult * per_token / peak;
      f.c = mult * per_sq / peak;
      f.present = true;
    }
  }
  for (size_t op = 0; op < m.comm.size(); ++op)
    for (size_t c = 0; c < m.comm[op].size(); ++c)
      m.comm[op][c] = default_link(static_cast<CommOp>(op), static_cast<LinkClass>(c));
  m.param_bytes = param_bytes;
  m.grad_bytes = grad_bytes;
  m.provenance["source"] = "flops at compute.peak_tflops = " + std::to_string(peak_tflops);
  return m;
}

}  // namespace minipt
