#include "trace/dump.hpp"

#include <cstdio>

#include "trace/h5.hpp"

namespace minipt {

void write_model_dump(const std::string& path, const ModelDump& d) {
  using namespace h5;
  write_atomically(path, [&](hid_t file) {
    attr_scalar(file, "step", H5T_NATIVE_INT64, static_cast<int64_t>(d.step));
    attr_string(file, "loss_convention",
                "step loss = mean over the step's sequences of each sequence's mean next-token "
                "cross-entropy; token weight 1/(L-1)/N");
    attr_scalar(file, "model.layers", H5T_NATIVE_INT64, static_cast<int64_t>(d.shape.layers));
    attr_scalar(file, "model.hidden", H5T_NATIVE_INT64, static_cast<int64_t>(d.shape.hidden));
    attr_scalar(file, "model.heads", H5T_NATIVE_INT64, static_cast<int64_t>(d.shape.heads));
    attr_scalar(file, "model.kv_heads", H5T_NATIVE_INT64, static_cast<int64_t>(d.shape.kv_heads));
    attr_scalar(file, "model.ffn", H5T_NATIVE_INT64, static_cast<int64_t>(d.shape.ffn));
    attr_scalar(file, "model.vocab", H5T_NATIVE_INT64, static_cast<int64_t>(d.shape.vocab));
    attr_scalar(file, "model.rope_theta", H5T_NATIVE_DOUBLE, d.shape.rope_theta);
    attr_scalar(file, "model.norm_eps", H5T_NATIVE_DOUBLE, d.shape.norm_eps);
    auto write_units = [&](const char* group, const std::vector<std::vector<float>>& units) {
      H5Id g(H5Gcreate2(file, group, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose, "H5Gcreate");
      for (size_t u = 0; u < units.size(); ++u) {
        char name[32];
        std::snprintf(name, sizeof name, "unit_%03zu", u);
        column(g, name, H5T_NATIVE_FLOAT, units[u]);
      }
    };
    write_units("params", d.params);
    write_units("grads", d.grads);
    {
      H5Id g(H5Gcreate2(file, "batch", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose,
             "H5Gcreate");
      column(g, "tokens", H5T_NATIVE_INT32, d.tokens);
      column(g, "lengths", H5T_NATIVE_INT64, d.lengths);
      std::vector<int64_t> cu{0};
      for (int64_t l : d.lengths) cu.push_back(cu.back() + l);
      column(g, "cu_seqlens", H5T_NATIVE_INT64, cu);
    }
    {
      H5Id g(H5Gcreate2(file, "losses", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose,
             "H5Gcreate");
      column(g, "sequence", H5T_NATIVE_DOUBLE, d.sequence_loss);
    }
  });
}

}  // namespace minipt
