#include "config/cost_file.hpp"

#include <cmath>
#include <cstdio>
#include <limits>
#include <set>
#include <sstream>
#include <stdexcept>

#include "compute/backend.hpp"
#include "config/config.hpp"
#include "config/toml.hpp"
#include "core/error.hpp"
#include "core/input_bundle.hpp"
#include "core/input_file.hpp"

namespace minipt {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

std::string num(double x) {
  char b[40];
  std::snprintf(b, sizeof b, "%.9g", x);
  std::string s = b;
  // Keep floats floats in TOML: "3" would read back as an integer (accepted), "inf" never
  // occurs (values are checked finite before writing).
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

// A number in a message, as %g writes it.
std::string plain(double x) {
  char b[40];
  std::snprintf(b, sizeof b, "%.9g", x);
  return b;
}

std::string str(const std::string& s) { return toml::Value::of_string(s).to_toml(); }

const char* kModelKeys[] = {"layers", "hidden", "heads", "kv_heads", "ffn", "vocab"};

int* shape_field(ModelShape& s, const std::string& k) {
  if (k == "layers") return &s.layers;
  if (k == "hidden") return &s.hidden;
  if (k == "heads") return &s.heads;
  if (k == "kv_heads") return &s.kv_heads;
  if (k == "ffn") return &s.ffn;
  return &s.vocab;
}

}  // namespace

std::string format_cost_model(const CostModel& m, const std::map<std::string, FitReport>& reports) {
  std::ostringstream f;
  f << "# minipt cost model (README.md, \"Cost model files\"): unit times in seconds,\n"
       "# t = a + b*tokens + c*sum(L^2) per microbatch; per-element costs in seconds; links\n"
       "# as latency (s) + bytes / bandwidth (GB/s = 1e9 bytes/s, bus bandwidth for\n"
       "# collectives). r2, worst_residual and samples describe each fit.\n\n[provenance]\n";
  for (const auto& [k, v] : m.provenance) f << k << " = " << str(v) << "\n";
  f << "\n[model]\n";
  ModelShape s = m.shape;
  for (const char* k : kModelKeys) f << k << " = " << *shape_field(s, k) << "\n";
  f << "param_bytes = " << m.param_bytes << "\ngrad_bytes = " << m.grad_bytes << "\n";
  f << "\n[compute]\nsum_squares_s_per_element = " << num(m.sum_squares_s_per_element)
    << "\nadamw_s_per_element = " << num(m.adamw_s_per_element)
    << "\naccumulate_grad_s_per_element = " << num(m.accumulate_grad_s_per_element)
    << "\nmicrobatch_overhead_s = " << num(m.microbatch_overhead_s)
    << "\nodc_step_s = " << num(m.odc_step_s) << "\n";
  for (size_t k = 0; k < 3; ++k)
    for (size_t p = 0; p < 3; ++p) {
      const TimeFit& t = m.unit[k][p];
      if (!t.present) continue;
      const std::string name = std::string(kUnitKindNames[k]) + "." + kPassNames[p];
      f << "\n[compute." << name << "]\na = " << num(t.a) << "\nb = " << num(t.b)
        << "\nc = " << num(t.c) << "\n";
      if (t.cv > 0) f << "cv = " << num(t.cv) << "\n";
      if (auto it = reports.find(name); it != reports.end())
        f << "r2 = " << num(it->second.r2)
          << "\nworst_residual = " << num(it->second.worst_residual)
          << "\nsamples = " << it->second.samples << "\n";
    }
  for (size_t c = 0; c < 3; ++c)
    for (size_t op = 0; op < 6; ++op) {
      const LinkCost& l = m.comm[op][c];
      f << "\n[comm." << kLinkClassNames[c] << "." << kCommOpNames[op]
        << "]\nlatency_s = " << num(l.latency_s)
        << "\nbandwidth_GBps = " << num(l.bandwidth_Bps * 1e-9) << "\nsource = " << str(l.source)
        << "\n";
    }
  return f.str();
}

CostModel read_cost_model(const std::string& path, const std::string& key) {
  std::string text;
  try {
    text = read_input_file(path, "", "configuration file");
  } catch (const ConfigError& e) {
    throw ConfigError(key, e.what());
  }
  return parse_cost_model(text, path, key);
}

CostModel parse_cost_model(std::string_view text, const std::string& path, const std::string& key) {
  toml::Table t;
  try {
    t = toml::parse(text, path);
  } catch (const ConfigError& e) {
    throw ConfigError(key, e.what());
  }
  auto fail = [&](const std::string& k, const std::string& what) -> ConfigError {
    return ConfigError(key, path + ": " + k + " " + what);
  };
  std::set<std::string> used;
  // R^2 of a non-negative least-squares fit can be below 0 (worse than the mean: a unit whose
  // time does not grow with its size, measured with noise); it is informational, so any
  // finite value up to 1 is accepted for it.
  // `hi`: the term's documented upper bound (cost_file.hpp), checked at load so that no
  // time the simulator or the emulated backend computes from it runs away.
  auto number = [&](const std::string& k, bool required, double fallback,
                    bool may_be_negative = false, double hi = kInf) {
    auto it = t.find(k);
    if (it == t.end()) {
      if (required) throw fail(k, "is missing");
      return fallback;
    }
    used.insert(k);
    const toml::Value& v = it->second;
    double x;
    if (v.type == toml::Value::Type::integer)
      x = static_cast<double>(v.i);
    else if (v.type == toml::Value::Type::floating)
      x = v.f;
    else
      throw fail(k, "must be a number (got " + v.type_name() + ")");
    if (may_be_negative && (!std::isfinite(x) || x > 1))
      throw fail(k, "must be a finite number <= 1 (got " + num(x) + ")");
    if (!may_be_negative && (!std::isfinite(x) || x < 0))
      throw fail(k, "must be a finite number >= 0 (got " + num(x) + ")");
    if (x > hi)
      throw fail(k, "is " + plain(x) + ", beyond its bound (allowed: 0.." + plain(hi) +
                        "; README.md, \"Cost model files\")");
    return x;
  };
  // An element size: the integer 2 or 4 (2.5 is not read as 2).
  auto element_bytes = [&](const std::string& k) {
    auto it = t.find(k);
    if (it == t.end()) throw fail(k, "is missing");
    used.insert(k);
    const toml::Value& v = it->second;
    const double x = v.type == toml::Value::Type::integer    ? static_cast<double>(v.i)
                     : v.type == toml::Value::Type::floating ? v.f
                                                             : -1;
    if (x != 2 && x != 4)
      throw fail(k, "must be 2 or 4 (bytes per element; got " + v.to_toml() + ")");
    return static_cast<int>(x);
  };
  CostModel m;
  for (const char* k : kModelKeys) {
    const double x = number(std::string("model.") + k, true, 0);
    if (x < 1 || x != std::floor(x) || x > 1e9)
      throw fail(std::string("model.") + k, "must be a positive integer");
    *shape_field(m.shape, k) = static_cast<int>(x);
  }
  m.param_bytes = element_bytes("model.param_bytes");
  m.grad_bytes = element_bytes("model.grad_bytes");
  const CostBounds b;
  m.sum_squares_s_per_element =
      number("compute.sum_squares_s_per_element", true, 0, false, b.per_element_s);
  m.adamw_s_per_element = number("compute.adamw_s_per_element", true, 0, false, b.per_element_s);
  m.accumulate_grad_s_per_element =
      number("compute.accumulate_grad_s_per_element", true, 0, false, b.per_element_s);
  m.microbatch_overhead_s = number("compute.microbatch_overhead_s", true, 0, false, b.call_s);
  m.odc_step_s = number("compute.odc_step_s", false, 0, false, b.call_s);  // issue 29
  for (size_t k = 0; k < 3; ++k)
    for (size_t p = 0; p < 3; ++p) {
      const std::string base = std::string("compute.") + kUnitKindNames[k] + "." + kPassNames[p];
      const bool required = p != 2;  // recompute is optional (a forward if absent)
      if (!required && t.find(base + ".a") == t.end()) continue;
      TimeFit& f = m.unit[k][p];
      f.a = number(base + ".a", true, 0, false, b.call_s);
      f.b = number(base + ".b", true, 0, false, b.per_token_s);
      f.c = number(base + ".c", true, 0, false, b.per_token2_s);
      f.cv = number(base + ".cv", false, 0);
      if (f.cv >= 1)
        throw fail(base + ".cv",
                   "must be in [0, 1): a spread smaller than the mean (got " + num(f.cv) + ")");
      f.present = true;
      number(base + ".r2", false, 0, true);
      for (const char* r : {".worst_residual", ".samples"}) number(base + r, false, 0);
    }
  for (size_t c = 0; c < 3; ++c)
    for (size_t op = 0; op < 6; ++op) {
      const std::string base = std::string("comm.") + kLinkClassNames[c] + "." + kCommOpNames[op];
      LinkCost& l = m.comm[op][c];
      l = default_link(static_cast<CommOp>(op), static_cast<LinkClass>(c));
      if (t.find(base + ".latency_s") == t.end() && t.find(base + ".bandwidth_GBps") == t.end())
        continue;
      l.latency_s = number(base + ".latency_s", true, 0, false, b.latency_s);
      const double gbps = number(base + ".bandwidth_GBps", true, 0, false, b.max_GBps);
      l.bandwidth_Bps = gbps * 1e9;
      // Small operations (allreduce, barrier) use no bandwidth: 0 is allowed for them.
      const bool small = op >= static_cast<size_t>(CommOp::allreduce);
      if ((!small || gbps > 0) && gbps < b.min_GBps)
        throw fail(base + ".bandwidth_GBps",
                   "is " + plain(gbps) + ", below its bound (allowed: " + plain(b.min_GBps) + ".." +
                       plain(b.max_GBps) + (small ? ", or 0" : "") + ")");
      l.source = path;
      if (auto it = t.find(base + ".source"); it != t.end()) {
        used.insert(base + ".source");
        if (it->second.type == toml::Value::Type::string) l.source = it->second.s;
      }
    }
  for (const auto& [k, v] : t) {
    if (k.rfind("provenance.", 0) == 0) {
      if (v.type == toml::Value::Type::string) m.provenance[k.substr(11)] = v.s;
      continue;
    }
    if (!used.count(k)) throw fail(k, "is not a cost-model key (README.md, \"Cost model files\")");
  }
  return m;
}

void check_cost_model_shape(const CostModel& m, const ModelShape& shape, const std::string& key) {
  ModelShape a = m.shape, b = shape;
  std::string diff;
  // Costs are per unit (one decoder block, the embedding, the head), so a file calibrated
  // on a few layers of a shape serves any depth of it.
  for (const char* k : kModelKeys)
    if (std::string(k) != "layers" && *shape_field(a, k) != *shape_field(b, k))
      diff += std::string(diff.empty() ? "" : ", ") + "model." + k + " " +
              std::to_string(*shape_field(a, k)) + " vs " + std::to_string(*shape_field(b, k));
  if (!diff.empty())
    throw ConfigError(key,
                      "the cost model was calibrated for another model shape than the "
                      "configuration's (cost file vs config: " +
                          diff + ")");
  if (a.layers > b.layers)
    throw ConfigError(
        key, "the cost model's model.layers = " + std::to_string(a.layers) +
                 " exceeds the configuration's model.layers = " + std::to_string(b.layers) +
                 " (allowed: a file calibrated on at most " + std::to_string(b.layers) +
                 " decoder layers)");
}

void adopt_cost_model_shape(CostModel& m, const ModelShape& shape, const std::string& key) {
  check_cost_model_shape(m, shape, key);
  m.provenance["calibrated_layers"] = std::to_string(m.shape.layers);
  m.shape = shape;
}

void load_cost_file(Config& cfg, const std::string& path, const std::string& key,
                    const InputReader& reader) {
  cfg.compute.costs.reset();
  if (path.empty()) return;
  CostModel m = parse_cost_model(reader.read(path, key, "configuration file"), path, key);
  adopt_cost_model_shape(m, cfg.model, key);
  cfg.compute.costs = std::make_shared<const CostModel>(std::move(m));
}

std::shared_ptr<const CostModel> cost_model_of(const Config& cfg) {
  if (cfg.compute.costs) return cfg.compute.costs;
  if (!cfg.compute.cost_model.empty())
    throw std::logic_error("compute.cost_model '" + cfg.compute.cost_model +
                           "' was not loaded (load_cost_file)");
  const BackendRow* row = compute_backends().find_any(cfg.compute.backend);
  return std::make_shared<const CostModel>(
      flops_cost_model(cfg.model, cfg.compute.peak_tflops, row ? row->param_bytes : 4, 4));
}

}  // namespace minipt
