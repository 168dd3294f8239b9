// Small RAII helpers over the HDF5 C API shared by the timeline and dump writers.
#pragma once

#include <hdf5.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "trace/atomic_file.hpp"

namespace minipt::h5 {

// RAII for HDF5 identifiers; every failed call throws.
struct H5Id {
  hid_t id = -1;
  herr_t (*close)(hid_t) = nullptr;
  H5Id(hid_t i, herr_t (*c)(hid_t), const char* what) : id(i), close(c) {
    if (id < 0) throw std::runtime_error(std::string("HDF5: ") + what + " failed");
  }
  ~H5Id() {
    if (id >= 0) close(id);
  }
  H5Id(H5Id&& o) noexcept : id(o.id), close(o.close) { o.id = -1; }
  H5Id(const H5Id&) = delete;
  H5Id& operator=(const H5Id&) = delete;
  operator hid_t() const { return id; }
};

inline void check(herr_t rc, const char* what) {
  if (rc < 0) throw std::runtime_error(std::string("HDF5: ") + what + " failed");
}

inline H5Id vlen_string_type() {
  H5Id t(H5Tcopy(H5T_C_S1), H5Tclose, "H5Tcopy");
  check(H5Tset_size(t, H5T_VARIABLE), "H5Tset_size");
  check(H5Tset_cset(t, H5T_CSET_UTF8), "H5Tset_cset");
  return t;
}

inline void attr_string(hid_t obj, const std::string& name, const std::string& value) {
  H5Id type = vlen_string_type();
  H5Id space(H5Screate(H5S_SCALAR), H5Sclose, "H5Screate");
  H5Id a(H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
         "H5Acreate");
  const char* p = value.c_str();
  check(H5Awrite(a, type, &p), "H5Awrite");
}

inline void attr_strings(hid_t obj, const std::string& name,
                         const std::vector<std::string>& values) {
  H5Id type = vlen_string_type();
  const hsize_t n = values.size();
  H5Id space(H5Screate_simple(1, &n, nullptr), H5Sclose, "H5Screate_simple");
  H5Id a(H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
         "H5Acreate");
  std::vector<const char*> p;
  for (const auto& v : values) p.push_back(v.c_str());
  check(H5Awrite(a, type, p.data()), "H5Awrite");
}

template <typename T>
void attr_scalar(hid_t obj, const std::string& name, hid_t type, T value) {
  H5Id space(H5Screate(H5S_SCALAR), H5Sclose, "H5Screate");
  H5Id a(H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
         "H5Acreate");
  check(H5Awrite(a, type, &value), "H5Awrite");
}

// One table column: a 1-D dataset, chunked and gzip-compressed when non-empty.
template <typename T>
void column(hid_t group, const char* name, hid_t type, const std::vector<T>& data) {
  const hsize_t n = data.size();
  H5Id space(H5Screate_simple(1, &n, nullptr), H5Sclose, "H5Screate_simple");
  H5Id plist(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, "H5Pcreate");
  if (n > 0) {
    const hsize_t chunk = std::min<hsize_t>(n, 65536);
    check(H5Pset_chunk(plist, 1, &chunk), "H5Pset_chunk");
    check(H5Pset_shuffle(plist), "H5Pset_shuffle");
    check(H5Pset_deflate(plist, 4), "H5Pset_deflate");
  }
  H5Id ds(H5Dcreate2(group, name, type, space, H5P_DEFAULT, plist, H5P_DEFAULT), H5Dclose,
          "H5Dcreate");
  if (n > 0) check(H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()), "H5Dwrite");
}

// Builds the HDF5 file through `fill` in memory (core driver, no backing store),
// checks every flush and close, then hands the image to AtomicFile: a unique temp in
// the target directory, fsync, rename. On any failure the exception names `path` and
// the error; no temp remains and an existing file under `path` is untouched.
inline void write_atomically(const std::string& path, const std::function<void(hid_t)>& fill) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // errors become exceptions, not stack dumps
  AtomicFile out(path);                         // claims the temp name before any work is done
  std::vector<char> image;
  try {
    H5Id fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, "H5Pcreate");
    check(H5Pset_fapl_core(fapl, 1 << 20, 0), "H5Pset_fapl_core");
    hid_t file = H5Fcreate(out.temp_path().c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (file < 0) throw std::runtime_error("HDF5: H5Fcreate (in memory) failed");
    try {
      fill(file);
      check(H5Fflush(file, H5F_SCOPE_GLOBAL), "H5Fflush");
      const ssize_t n = H5Fget_file_image(file, nullptr, 0);
      if (n < 0) throw std::runtime_error("HDF5: H5Fget_file_image failed");
      image.resize(static_cast<size_t>(n));
      if (H5Fget_file_image(file, image.data(), image.size()) != n)
        throw std::runtime_error("HDF5: H5Fget_file_image failed");
    } catch (...) {
      H5Fclose(file);
      throw;
    }
    check(H5Fclose(file), "H5Fclose");
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot write '" + path + "': " + e.what());
  }
  out.write(std::string_view(image.data(), image.size()));
  out.commit();
}

// Reading (minipt calibrate). Every failure throws std::runtime_error naming `what`.
inline bool exists(hid_t loc, const std::string& path) {
  return H5Lexists(loc, path.c_str(), H5P_DEFAULT) > 0;
}

// A 1-D column converted to T (native_type: H5T_NATIVE_INT64, H5T_NATIVE_DOUBLE, ...).
template <typename T>
std::vector<T> read_column(hid_t loc, const std::string& path, hid_t native_type) {
  H5Id ds(H5Dopen2(loc, path.c_str(), H5P_DEFAULT), H5Dclose, ("open " + path).c_str());
  H5Id space(H5Dget_space(ds), H5Sclose, "H5Dget_space");
  const hssize_t n = H5Sget_simple_extent_npoints(space);
  if (n < 0) throw std::runtime_error("HDF5: " + path + ": bad extent");
  std::vector<T> out(static_cast<size_t>(n));
  if (n > 0)
    check(H5Dread(ds, native_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()),
          ("read " + path).c_str());
  return out;
}

// A scalar string attribute (variable or fixed length).
inline std::string read_attr_string(hid_t obj, const std::string& name) {
  H5Id a(H5Aopen(obj, name.c_str(), H5P_DEFAULT), H5Aclose, ("open attribute " + name).c_str());
  H5Id ftype(H5Aget_type(a), H5Tclose, "H5Aget_type");
  if (H5Tget_class(ftype) != H5T_STRING)
    throw std::runtime_error("HDF5: attribute " + name + " is not a string");
  if (H5Tis_variable_str(ftype) > 0) {
    H5Id mtype = vlen_string_type();
    char* p = nullptr;
    check(H5Aread(a, mtype, &p), ("read attribute " + name).c_str());
    std::string s = p ? p : "";
    H5free_memory(p);
    return s;
  }
  const size_t n = H5Tget_size(ftype);
  std::string s(n, '\0');
  H5Id mtype(H5Tcopy(H5T_C_S1), H5Tclose, "H5Tcopy");
  check(H5Tset_size(mtype, n), "H5Tset_size");
  check(H5Aread(a, mtype, s.data()), ("read attribute " + name).c_str());
  s.resize(std::strlen(s.c_str()));
  return s;
}

template <typename T>
T read_attr_scalar(hid_t obj, const std::string& name, hid_t native_type) {
  H5Id a(H5Aopen(obj, name.c_str(), H5P_DEFAULT), H5Aclose, ("open attribute " + name).c_str());
  T v{};
  check(H5Aread(a, native_type, &v), ("read attribute " + name).c_str());
  return v;
}

}  // namespace minipt::h5
