#include "core/io/hdf5_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace ladder::core {

namespace {

std::runtime_error h5_error(const std::string& file, const std::string& what) {
  return std::runtime_error(file + ": HDF5: " + what);
}

// HDF5 1.10 has no error class for a checksum mismatch: its Fletcher-32 filter says so in the description.
herr_t find_checksum_error(unsigned, const H5E_error2_t* e, void* found) {
  if (e->desc && std::strstr(e->desc, "Fletcher32")) *static_cast<bool*>(found) = true;
  return 0;
}

// Why the last read failed, from HDF5's error stack: a Fletcher-32 mismatch is corruption, said plainly.
std::string read_failure() {
  bool checksum = false;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, find_checksum_error, &checksum);
  return checksum ? "its Fletcher-32 checksum does not match: the file is corrupt"
                  : "truncated or corrupt file?";
}

hid_t mem_type(DType t) {
  switch (t) {
    case DType::f32: return H5T_NATIVE_FLOAT;
    case DType::f16: return H5T_NATIVE_UINT16;
    case DType::bf16: return H5T_NATIVE_UINT16;
    case DType::i32: return H5T_NATIVE_INT32;
    case DType::i8: return H5T_NATIVE_INT8;
    case DType::u4: return H5T_NATIVE_UINT8;
  }
  return H5T_NATIVE_FLOAT;
}

// HDF5 has no predefined half/bfloat16 types before 1.14.4; build IEEE-layout float types so h5py reads
// f16 as numpy float16 and bf16 as a 16-bit float (sign 15, exponent 7..14, mantissa 0..6).
// The fields must be moved into the low 16 bits before the size shrinks: HDF5 refuses to shrink a float
// type whose fields would fall outside it (the type silently stayed 4 bytes wide, and 2-byte buffers were
// read as 4-byte elements). This is h5py's own recipe for IEEE_F16LE.
hid_t make_float16_type(bool bf16) {
  hid_t t = H5Tcopy(H5T_IEEE_F32LE);
  if (bf16) {
    H5Tset_fields(t, 15, 7, 8, 0, 7);
  } else {
    H5Tset_fields(t, 15, 10, 5, 0, 10);
  }
  H5Tset_offset(t, 0);
  H5Tset_precision(t, 16);
  if (H5Tset_size(t, 2) < 0 || H5Tget_size(t) != 2) {
    H5Tclose(t);
    throw std::logic_error("HDF5: cannot build a 16-bit float type");
  }
  H5Tset_ebias(t, bf16 ? 127 : 15);
  H5Tset_norm(t, H5T_NORM_IMPLIED);
  return t;
}

hid_t file_type(DType t) {
  if (t == DType::f16) return make_float16_type(false);
  if (t == DType::bf16) return make_float16_type(true);
  return H5Tcopy(mem_type(t));
}

// Writing raw half bits: the memory type must equal the file type, or HDF5 converts.
hid_t raw_mem_type(DType t) {
  if (t == DType::f16 || t == DType::bf16) return file_type(t);
  return H5Tcopy(mem_type(t));
}

// Variable-length UTF-8, the type h5py writes for a Python str and reads back as str (a fixed-length string
// reads back as bytes).
void write_string_attr(hid_t obj, const std::string& file, const std::string& key, const std::string& value) {
  hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, H5T_VARIABLE);
  H5Tset_cset(type, H5T_CSET_UTF8);
  hid_t space = H5Screate(H5S_SCALAR);
  if (H5Aexists(obj, key.c_str()) > 0) H5Adelete(obj, key.c_str());
  hid_t attr = H5Acreate2(obj, key.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT);
  const char* text = value.c_str();
  herr_t rc = attr < 0 ? -1 : H5Awrite(attr, type, &text);
  if (attr >= 0) H5Aclose(attr);
  H5Sclose(space);
  H5Tclose(type);
  if (rc < 0) throw h5_error(file, "cannot write attribute '" + key + "'");
}

}  // namespace

Hdf5Dataset::~Hdf5Dataset() {
  if (id_ >= 0) H5Dclose(id_);
}
Hdf5Dataset::Hdf5Dataset(Hdf5Dataset&& o) noexcept
    : id_(o.id_), file_(std::move(o.file_)), name_(std::move(o.name_)), dtype_(o.dtype_), dims_(std::move(o.dims_)),
      direct_(std::move(o.direct_)), direct_checked_(o.direct_checked_) {
  o.id_ = -1;
  o.direct_checked_ = false;
}
Hdf5Dataset& Hdf5Dataset::operator=(Hdf5Dataset&& o) noexcept {
  if (this != &o) {
    if (id_ >= 0) H5Dclose(id_);
    id_ = o.id_;
    file_ = std::move(o.file_);
    name_ = std::move(o.name_);
    dtype_ = o.dtype_;
    dims_ = std::move(o.dims_);
    direct_ = std::move(o.direct_);
    direct_checked_ = o.direct_checked_;
    o.id_ = -1;
    o.direct_checked_ = false;
  }
  return *this;
}

static void select_rows(hid_t id, const std::vector<uint64_t>& dims, uint64_t row0, uint64_t rows, hid_t& fspace,
                        hid_t& mspace) {
  std::vector<hsize_t> start(dims.size(), 0), count(dims.begin(), dims.end());
  start[0] = row0;
  count[0] = rows;
  fspace = H5Dget_space(id);
  H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr);
  mspace = H5Screate_simple(int(count.size()), count.data(), nullptr);
}

void Hdf5Dataset::write_rows(uint64_t row0, uint64_t rows, const void* data) {
  if (rows == 0) return;
  if (row0 + rows > dims_[0])
    throw h5_error(file_, "rows [" + std::to_string(row0) + ", " + std::to_string(row0 + rows) + ") past the end of '" + name_ + "'");
  hid_t fspace, mspace;
  select_rows(id_, dims_, row0, rows, fspace, mspace);
  hid_t mt = raw_mem_type(dtype_);
  herr_t rc = H5Dwrite(id_, mt, mspace, fspace, H5P_DEFAULT, data);
  H5Tclose(mt);
  H5Sclose(mspace);
  H5Sclose(fspace);
  if (rc < 0) throw h5_error(file_, "cannot write dataset '" + name_ + "'");
}

void Hdf5Dataset::write_rows_from_f32(uint64_t row0, uint64_t rows, const float* data) {
  uint64_t per_row = 1;
  for (size_t i = 1; i < dims_.size(); ++i) per_row *= dims_[i];
  const size_t n = size_t(rows * per_row);
  if (dtype_ == DType::f32) return write_rows(row0, rows, data);
  if (dtype_ != DType::f16 && dtype_ != DType::bf16) throw h5_error(file_, "dataset '" + name_ + "' is not a float dataset");
  std::vector<uint16_t> bits(n);
  for (size_t i = 0; i < n; ++i) bits[i] = dtype_ == DType::f16 ? f32_to_f16(data[i]) : f32_to_bf16(data[i]);
  write_rows(row0, rows, bits.data());
}

void Hdf5Dataset::read_rows(uint64_t row0, uint64_t rows, void* data) const {
  if (row0 + rows > dims_[0]) throw h5_error(file_, "read past the end of '" + name_ + "'");
  hid_t fspace, mspace;
  select_rows(id_, dims_, row0, rows, fspace, mspace);
  hid_t mt = raw_mem_type(dtype_);
  herr_t rc = H5Dread(id_, mt, mspace, fspace, H5P_DEFAULT, data);
  const std::string why = rc < 0 ? read_failure() : "";  // before the next call clears HDF5's error stack
  H5Tclose(mt);
  H5Sclose(mspace);
  H5Sclose(fspace);
  if (rc < 0) throw h5_error(file_, "cannot read dataset '" + name_ + "' (" + why + ")");
}

void Hdf5Dataset::set_attr(const std::string& key, const std::string& value) { write_string_attr(id_, file_, key, value); }

void Hdf5Dataset::write_all(const void* data) {
  uint64_t n = 1;
  for (auto d : dims_) n *= d;
  if (n == 0) return;
  hid_t mt = raw_mem_type(dtype_);
  herr_t rc = H5Dwrite(id_, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
  H5Tclose(mt);
  if (rc < 0) throw h5_error(file_, "cannot write dataset '" + name_ + "'");
}

void Hdf5Dataset::read_all(void* data) const {
  uint64_t n = 1;
  for (auto d : dims_) n *= d;
  if (n == 0) return;
  hid_t mt = raw_mem_type(dtype_);
  herr_t rc = H5Dread(id_, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
  const std::string why = rc < 0 ? read_failure() : "";
  H5Tclose(mt);
  if (rc < 0) throw h5_error(file_, "cannot read dataset '" + name_ + "' (" + why + ")");
}

Hdf5File Hdf5File::create(const std::string& path) {
  Hdf5File f;
  f.path_ = path;
  f.tmp_path_ = path + ".tmp";
  f.writing_ = true;
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // we report errors ourselves, with context
  f.id_ = H5Fcreate(f.tmp_path_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f.id_ < 0) throw h5_error(f.tmp_path_, "cannot create file (does the directory exist and is it writable?)");
  return f;
}

Hdf5File Hdf5File::open_read(const std::string& path) {
  Hdf5File f;
  f.path_ = path;
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  f.id_ = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f.id_ < 0) throw h5_error(path, "cannot open (missing, or not an HDF5 file)");
  return f;
}

Hdf5File::Hdf5File(Hdf5File&& o) noexcept
    : id_(o.id_), path_(std::move(o.path_)), tmp_path_(std::move(o.tmp_path_)), writing_(o.writing_) {
  o.id_ = -1;
  o.writing_ = false;
}

Hdf5File::~Hdf5File() {
  if (id_ >= 0) H5Fclose(id_);
  if (writing_) std::remove(tmp_path_.c_str());
}

Hdf5Dataset Hdf5File::create_dataset(const std::string& name, DType dtype, const std::vector<uint64_t>& dims,
                                     uint64_t chunk_rows, bool checksum) {
  std::vector<hsize_t> d(dims.begin(), dims.end()), chunk(dims.begin(), dims.end());
  if (!chunk.empty()) chunk[0] = std::max<hsize_t>(1, std::min<hsize_t>(chunk_rows, dims[0] == 0 ? 1 : dims[0]));
  hid_t space = d.empty() ? H5Screate(H5S_SCALAR) : H5Screate_simple(int(d.size()), d.data(), nullptr);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  if (!dims.empty() && dims[0] > 0) {
    H5Pset_chunk(dcpl, int(chunk.size()), chunk.data());
    if (checksum) H5Pset_fletcher32(dcpl);
  }
  hid_t ft = file_type(dtype);
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  hid_t id = H5Dcreate2(id_, name.c_str(), ft, space, lcpl, dcpl, H5P_DEFAULT);
  H5Pclose(lcpl);
  H5Tclose(ft);
  H5Pclose(dcpl);
  H5Sclose(space);
  if (id < 0) throw h5_error(path_, "cannot create dataset '" + name + "'");
  return Hdf5Dataset(id, path_, name, dtype, dims);
}

Hdf5Dataset Hdf5File::open_dataset(const std::string& name) const {
  hid_t id = H5Dopen2(id_, name.c_str(), H5P_DEFAULT);
  if (id < 0) throw h5_error(path_, "no dataset '" + name + "'");
  hid_t space = H5Dget_space(id);
  int nd = H5Sget_simple_extent_ndims(space);
  std::vector<hsize_t> d(size_t(std::max(nd, 0)));
  H5Sget_simple_extent_dims(space, d.data(), nullptr);
  H5Sclose(space);
  hid_t t = H5Dget_type(id);
  DType dt;
  H5T_class_t cls = H5Tget_class(t);
  size_t size = H5Tget_size(t);
  if (cls == H5T_FLOAT && size == 4) dt = DType::f32;
  else if (cls == H5T_FLOAT && size == 2) {
    size_t spos, epos, esize, mpos, msize;
    H5Tget_fields(t, &spos, &epos, &esize, &mpos, &msize);
    dt = esize == 8 ? DType::bf16 : DType::f16;
  } else if (cls == H5T_INTEGER && size == 4) dt = DType::i32;
  else if (cls == H5T_INTEGER && size == 1) dt = DType::i8;
  else {
    H5Tclose(t);
    H5Dclose(id);
    throw h5_error(path_, "dataset '" + name + "' has a type ladder does not read");
  }
  H5Tclose(t);
  return Hdf5Dataset(id, path_, name, dt, std::vector<uint64_t>(d.begin(), d.end()));
}

void Hdf5File::create_group(const std::string& name, bool track_order) {
  hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
  if (track_order) H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
  hid_t g = H5Gcreate2(id_, name.c_str(), H5P_DEFAULT, gcpl, H5P_DEFAULT);
  H5Pclose(gcpl);
  if (g < 0) throw h5_error(path_, "cannot create group '" + name + "'");
  H5Gclose(g);
}

bool Hdf5File::exists(const std::string& name) const {
  // H5Lexists needs every intermediate link to exist: check the path one component at a time.
  std::string prefix = name.empty() || name[0] != '/' ? "" : "/";
  size_t pos = prefix.size();
  while (pos < name.size()) {
    size_t next = name.find('/', pos);
    if (next == std::string::npos) next = name.size();
    if (next > pos) {
      if (!prefix.empty() && prefix.back() != '/') prefix.push_back('/');
      prefix.append(name, pos, next - pos);
      if (H5Lexists(id_, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    }
    pos = next + 1;
  }
  return true;
}

bool Hdf5File::is_group(const std::string& name) const {
  if (!exists(name)) return false;
  hid_t o = H5Oopen(id_, name.c_str(), H5P_DEFAULT);
  if (o < 0) return false;
  const bool g = H5Iget_type(o) == H5I_GROUP;
  H5Oclose(o);
  return g;
}

namespace {
herr_t collect_link_name(hid_t, const char* name, const H5L_info_t*, void* out) {
  static_cast<std::vector<std::string>*>(out)->push_back(name);
  return 0;
}
herr_t collect_attr_name(hid_t, const char* name, const H5A_info_t*, void* out) {
  static_cast<std::vector<std::string>*>(out)->push_back(name);
  return 0;
}
}  // namespace

std::vector<std::string> Hdf5File::list_group(const std::string& name) const {
  hid_t g = H5Gopen2(id_, name.c_str(), H5P_DEFAULT);
  if (g < 0) throw h5_error(path_, "no group '" + name + "'");
  std::vector<std::string> out;
  // Creation order when the group tracks it; by name otherwise (iterating by creation order then fails).
  hid_t gcpl = H5Gget_create_plist(g);
  unsigned flags = 0;
  H5Pget_link_creation_order(gcpl, &flags);
  H5Pclose(gcpl);
  const H5_index_t index = (flags & H5P_CRT_ORDER_INDEXED) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
  herr_t rc = H5Literate(g, index, H5_ITER_INC, nullptr, collect_link_name, &out);
  H5Gclose(g);
  if (rc < 0) throw h5_error(path_, "cannot list group '" + name + "'");
  return out;
}

namespace {
// Chunked (a chunk holds up to 1 Mi elements) so that HDF5's Fletcher-32 filter guards the values; an empty
// vector stays contiguous (chunks cannot be empty).
hid_t create_vector(hid_t file, const std::string& path, const std::string& name, hid_t type, size_t n) {
  hsize_t d = n;
  hid_t space = H5Screate_simple(1, &d, nullptr);
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  if (n > 0) {
    const hsize_t chunk = std::min<hsize_t>(n, hsize_t(1) << 20);
    H5Pset_chunk(dcpl, 1, &chunk);
    H5Pset_fletcher32(dcpl);
  }
  hid_t id = H5Dcreate2(file, name.c_str(), type, space, lcpl, dcpl, H5P_DEFAULT);
  H5Pclose(dcpl);
  H5Pclose(lcpl);
  H5Sclose(space);
  if (id < 0) throw h5_error(path, "cannot create dataset '" + name + "'");
  return id;
}

template <class T>
void write_vector_impl(hid_t file, const std::string& path, const std::string& name, hid_t file_type,
                       hid_t mem_type, const std::vector<T>& v) {
  hid_t id = create_vector(file, path, name, file_type, v.size());
  herr_t rc = v.empty() ? 0 : H5Dwrite(id, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
  H5Dclose(id);
  if (rc < 0) throw h5_error(path, "cannot write dataset '" + name + "'");
}

// Opens a 1-D dataset and checks its type class (and size when `size` > 0).
template <class T>
std::vector<T> read_vector_impl(hid_t file, const std::string& path, const std::string& name, hid_t mem_type,
                                bool allow_float, size_t size) {
  hid_t id = H5Dopen2(file, name.c_str(), H5P_DEFAULT);
  if (id < 0) throw h5_error(path, "no dataset '" + name + "'");
  hid_t space = H5Dget_space(id);
  const int nd = H5Sget_simple_extent_ndims(space);
  hsize_t d = 0;
  if (nd == 1) H5Sget_simple_extent_dims(space, &d, nullptr);
  H5Sclose(space);
  hid_t t = H5Dget_type(id);
  const H5T_class_t cls = H5Tget_class(t);
  const size_t tsize = H5Tget_size(t);
  H5Tclose(t);
  const bool ok_type = (cls == H5T_INTEGER || (allow_float && cls == H5T_FLOAT)) && (size == 0 || tsize == size);
  if (nd != 1 || !ok_type) {
    H5Dclose(id);
    throw h5_error(path, "dataset '" + name + "' is not a 1-D " + (allow_float ? "numeric" : "integer") +
                             (size ? " " + std::to_string(size * 8) + "-bit" : std::string()) + " vector");
  }
  std::vector<T> v(static_cast<size_t>(d));
  herr_t rc = v.empty() ? 0 : H5Dread(id, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
  const std::string why = rc < 0 ? read_failure() : "";
  H5Dclose(id);
  if (rc < 0) throw h5_error(path, "cannot read dataset '" + name + "' (" + why + ")");
  return v;
}
}  // namespace

void Hdf5File::write_vector(const std::string& name, const std::vector<double>& v) {
  write_vector_impl(id_, path_, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, v);
}
void Hdf5File::write_vector(const std::string& name, const std::vector<int64_t>& v) {
  write_vector_impl(id_, path_, name, H5T_STD_I64LE, H5T_NATIVE_INT64, v);
}
void Hdf5File::write_vector(const std::string& name, const std::vector<uint8_t>& v) {
  write_vector_impl(id_, path_, name, H5T_STD_U8LE, H5T_NATIVE_UINT8, v);
}
std::vector<double> Hdf5File::read_f64_vector(const std::string& name) const {
  return read_vector_impl<double>(id_, path_, name, H5T_NATIVE_DOUBLE, true, 0);
}
std::vector<int64_t> Hdf5File::read_i64_vector(const std::string& name) const {
  return read_vector_impl<int64_t>(id_, path_, name, H5T_NATIVE_INT64, false, 0);
}
std::vector<uint8_t> Hdf5File::read_u8_vector(const std::string& name) const {
  return read_vector_impl<uint8_t>(id_, path_, name, H5T_NATIVE_UINT8, false, 1);
}

void Hdf5File::set_attr(const std::string& key, const std::string& value) { write_string_attr(id_, path_, key, value); }

void Hdf5File::set_attr(const std::string& key, int64_t value) {
  hid_t space = H5Screate(H5S_SCALAR);
  if (H5Aexists(id_, key.c_str()) > 0) H5Adelete(id_, key.c_str());
  hid_t attr = H5Acreate2(id_, key.c_str(), H5T_NATIVE_INT64, space, H5P_DEFAULT, H5P_DEFAULT);
  herr_t rc = attr < 0 ? -1 : H5Awrite(attr, H5T_NATIVE_INT64, &value);
  if (attr >= 0) H5Aclose(attr);
  H5Sclose(space);
  if (rc < 0) throw h5_error(path_, "cannot write attribute '" + key + "'");
}

void Hdf5File::set_attr_f64(const std::string& key, double value) {
  hid_t space = H5Screate(H5S_SCALAR);
  if (H5Aexists(id_, key.c_str()) > 0) H5Adelete(id_, key.c_str());
  hid_t attr = H5Acreate2(id_, key.c_str(), H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT);
  herr_t rc = attr < 0 ? -1 : H5Awrite(attr, H5T_NATIVE_DOUBLE, &value);
  if (attr >= 0) H5Aclose(attr);
  H5Sclose(space);
  if (rc < 0) throw h5_error(path_, "cannot write attribute '" + key + "'");
}

bool Hdf5File::has_attr(const std::string& key) const { return H5Aexists(id_, key.c_str()) > 0; }

std::vector<std::string> Hdf5File::attr_names() const {
  std::vector<std::string> out;
  hsize_t idx = 0;
  if (H5Aiterate2(id_, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_attr_name, &out) < 0)
    throw h5_error(path_, "cannot list the root attributes");
  return out;
}

namespace {
// Opens an attribute, checks its class and reads one scalar of `mem_type`.
template <class T>
T read_numeric_attr(hid_t obj, const std::string& file, const std::string& key, hid_t mem_type, bool allow_float) {
  if (H5Aexists(obj, key.c_str()) <= 0) throw h5_error(file, "no attribute '" + key + "'");
  hid_t attr = H5Aopen(obj, key.c_str(), H5P_DEFAULT);
  hid_t t = H5Aget_type(attr);
  const H5T_class_t cls = H5Tget_class(t);
  H5Tclose(t);
  hid_t space = H5Aget_space(attr);
  const hssize_t n = H5Sget_simple_extent_npoints(space);
  H5Sclose(space);
  T v{};
  herr_t rc = -1;
  if ((cls == H5T_INTEGER || (allow_float && cls == H5T_FLOAT)) && n == 1) rc = H5Aread(attr, mem_type, &v);
  H5Aclose(attr);
  if (rc < 0)
    throw h5_error(file, "attribute '" + key + "' is not a scalar " + (allow_float ? "number" : "integer"));
  return v;
}
}  // namespace

bool Hdf5File::attr_is_string(const std::string& key) const {
  if (H5Aexists(id_, key.c_str()) <= 0) return false;
  hid_t attr = H5Aopen(id_, key.c_str(), H5P_DEFAULT);
  hid_t t = H5Aget_type(attr);
  const bool s = H5Tget_class(t) == H5T_STRING;
  H5Tclose(t);
  H5Aclose(attr);
  return s;
}

int64_t Hdf5File::get_attr_int(const std::string& key) const {
  return read_numeric_attr<int64_t>(id_, path_, key, H5T_NATIVE_INT64, false);
}

double Hdf5File::get_attr_f64(const std::string& key) const {
  return read_numeric_attr<double>(id_, path_, key, H5T_NATIVE_DOUBLE, true);
}

std::string Hdf5File::get_attr_string(const std::string& key) const {
  if (H5Aexists(id_, key.c_str()) <= 0) throw h5_error(path_, "no attribute '" + key + "'");
  hid_t attr = H5Aopen(id_, key.c_str(), H5P_DEFAULT);
  hid_t t = H5Aget_type(attr);
  std::string out;
  if (H5Tis_variable_str(t) > 0) {
    char* s = nullptr;
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5Tget_cset(t));  // HDF5 converts no string between character sets
    H5Aread(attr, mt, &s);
    if (s) out = s;
    H5free_memory(s);
    H5Tclose(mt);
  } else {
    out.resize(H5Tget_size(t));
    H5Aread(attr, t, out.data());
    while (!out.empty() && out.back() == '\0') out.pop_back();
  }
  H5Tclose(t);
  H5Aclose(attr);
  return out;
}

namespace {
void fsync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) throw h5_error(path, "cannot open to fsync");
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0 && !directory) throw h5_error(path, "fsync failed");  // some filesystems refuse directory fsync
}
}  // namespace

void Hdf5File::commit(bool durable) {
  if (!writing_) return;
  if (H5Fclose(id_) < 0) {
    id_ = -1;
    throw h5_error(tmp_path_, "cannot close file");
  }
  id_ = -1;
  if (durable) fsync_path(tmp_path_, false);
  if (std::rename(tmp_path_.c_str(), path_.c_str()) != 0) throw h5_error(path_, "cannot rename from " + tmp_path_);
  writing_ = false;
  if (durable) {
    const std::filesystem::path parent = std::filesystem::path(path_).parent_path();
    fsync_path(parent.empty() ? std::string(".") : parent.string(), true);
  }
}

// ---- Row lists, chunk shapes, MPI files and integer-vector attributes ----

// Where each row of a dataset lies in the file, so that a row list is a few preads: H5Dread's fixed cost
// per call, not the bytes, dominates a random batch's reads (figures: docs/ACTIVATION_STORE.md, Speed).
struct Hdf5Dataset::DirectRows {
  int fd = -1;
  uint64_t chunk_rows = 0;
  size_t full_row_bytes = 0;          // one whole row (every later dimension) in the file
  std::vector<haddr_t> chunk_addr;    // file offset of each chunk, in row order
  ~DirectRows() {
    if (fd >= 0) ::close(fd);
  }
};

std::shared_ptr<const Hdf5Dataset::DirectRows> Hdf5Dataset::direct_rows() const {
  if (direct_checked_) return direct_;
  direct_checked_ = true;
  if (dims_.empty() || dims_[0] == 0) return nullptr;
  // Only the layout ladder writes: chunked along the first dimension alone, no filters, the file's bytes
  // those of the memory type (little-endian, same size). Anything else keeps the H5Dread path.
  hid_t dcpl = H5Dget_create_plist(id_);
  std::vector<hsize_t> chunk(dims_.size(), 0);
  const bool chunked = H5Pget_layout(dcpl) == H5D_CHUNKED && H5Pget_chunk(dcpl, int(chunk.size()), chunk.data()) == int(dims_.size()) &&
                       H5Pget_nfilters(dcpl) == 0;
  H5Pclose(dcpl);
  if (!chunked || chunk[0] == 0) return nullptr;
  for (size_t d = 1; d < dims_.size(); ++d)
    if (chunk[d] != dims_[d]) return nullptr;
  hid_t ft = H5Dget_type(id_);
  const size_t elem = dtype_bytes(dtype_, 1);
  const H5T_order_t order = H5Tget_order(ft);
  const bool same_bytes = H5Tget_size(ft) == elem && (order == H5T_ORDER_LE || (elem == 1 && order == H5T_ORDER_NONE));
  H5Tclose(ft);
  if (!same_bytes) return nullptr;
  auto dr = std::make_shared<DirectRows>();
  dr->chunk_rows = chunk[0];
  dr->full_row_bytes = elem;
  for (size_t d = 1; d < dims_.size(); ++d) dr->full_row_bytes *= dims_[d];
  const uint64_t n_chunks = (dims_[0] + chunk[0] - 1) / chunk[0];
  std::vector<hsize_t> coord(dims_.size(), 0);
  for (uint64_t c = 0; c < n_chunks; ++c) {
    coord[0] = c * chunk[0];
    unsigned mask = 0;
    haddr_t addr = HADDR_UNDEF;
    hsize_t size = 0;
    // An unallocated chunk (never written: its rows read as the fill value) keeps the H5Dread path.
    if (H5Dget_chunk_info_by_coord(id_, coord.data(), &mask, &addr, &size) < 0 || addr == HADDR_UNDEF ||
        size != chunk[0] * dr->full_row_bytes)
      return nullptr;
    dr->chunk_addr.push_back(addr);
  }
  dr->fd = ::open(file_.c_str(), O_RDONLY | O_CLOEXEC);
  if (dr->fd < 0) return nullptr;
  direct_ = dr;
  return direct_;
}

void Hdf5Dataset::read_rows_at(const std::vector<uint64_t>& rows, uint64_t dim1, void* data) const {
  if (rows.empty()) return;
  if (direct_rows()) {
    // One row at a time, each into its place: the pread path has no ordering requirement.
    const size_t row_bytes = row_list_bytes(dim1);
    for (size_t i = 0; i < rows.size(); ++i) read_row_list({rows[i]}, dim1, static_cast<char*>(data) + i * row_bytes);
    return;
  }
  std::vector<uint64_t> uniq(rows);
  std::sort(uniq.begin(), uniq.end());
  uniq.erase(std::unique(uniq.begin(), uniq.end()), uniq.end());
  const size_t row_bytes = row_list_bytes(dim1);
  std::vector<char> buf(uniq.size() * row_bytes);
  read_row_list(uniq, dim1, buf.data());
  for (size_t i = 0; i < rows.size(); ++i) {
    const size_t u = size_t(std::lower_bound(uniq.begin(), uniq.end(), rows[i]) - uniq.begin());
    std::copy_n(buf.data() + u * row_bytes, row_bytes, static_cast<char*>(data) + i * row_bytes);
  }
}

size_t Hdf5Dataset::row_list_bytes(uint64_t dim1) const {
  size_t b = dtype_bytes(dtype_, 1);
  for (size_t d = 1; d < dims_.size(); ++d) b *= d == 1 && dim1 > 0 ? dim1 : dims_[d];
  return b;
}

void Hdf5Dataset::read_row_list(const std::vector<uint64_t>& rows, uint64_t dim1, void* data) const {
  if (rows.empty()) return;
  if (dims_.empty()) throw h5_error(file_, "'" + name_ + "' is a scalar; it has no rows");
  std::vector<hsize_t> start(dims_.size(), 0), count(dims_.begin(), dims_.end());
  if (dims_.size() > 1 && dim1 > 0) {
    if (dim1 > dims_[1]) throw h5_error(file_, "'" + name_ + "' has only " + std::to_string(dims_[1]) + " columns");
    count[1] = dim1;
  }
  const size_t row_bytes = row_list_bytes(dim1);
  if (auto dr = direct_rows()) {
    // A row's first dim1 columns are the first row_bytes of the row (row-major within the chunk).
    for (size_t i = 0; i < rows.size(); ++i) {
      if (rows[i] >= dims_[0] || (i > 0 && rows[i] <= rows[i - 1]))
        throw h5_error(file_, "row list for '" + name_ + "' is not strictly increasing below " + std::to_string(dims_[0]));
      const off_t at = off_t(dr->chunk_addr[rows[i] / dr->chunk_rows] + (rows[i] % dr->chunk_rows) * dr->full_row_bytes);
      char* dst = static_cast<char*>(data) + i * row_bytes;
      size_t done = 0;
      while (done < row_bytes) {
        const ssize_t n = ::pread(dr->fd, dst + done, row_bytes - done, at + off_t(done));
        if (n <= 0) throw h5_error(file_, "cannot read row " + std::to_string(rows[i]) + " of '" + name_ + "' (truncated file?)");
        done += size_t(n);
      }
    }
    return;
  }
  // One H5Dread per run of consecutive rows. A single read of the union of runs is much slower in HDF5 1.10:
  // mapping an irregular selection onto chunks costs far more than the reads themselves
  // (docs/ACTIVATION_STORE.md, Speed).
  hid_t fspace = H5Dget_space(id_);
  hid_t mt = raw_mem_type(dtype_);
  herr_t rc = 0;
  size_t i = 0;
  std::string problem, why;
  while (i < rows.size() && rc >= 0) {
    if (rows[i] >= dims_[0] || (i > 0 && rows[i] <= rows[i - 1])) {
      problem = "row list for '" + name_ + "' is not strictly increasing below " + std::to_string(dims_[0]);
      break;
    }
    size_t j = i + 1;
    while (j < rows.size() && rows[j] == rows[j - 1] + 1 && rows[j] < dims_[0]) ++j;
    start[0] = rows[i];
    count[0] = j - i;
    rc = H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr);
    hid_t mspace = H5Screate_simple(int(count.size()), count.data(), nullptr);
    if (rc >= 0) rc = H5Dread(id_, mt, mspace, fspace, H5P_DEFAULT, static_cast<char*>(data) + i * row_bytes);
    if (rc < 0 && why.empty()) why = read_failure();
    H5Sclose(mspace);
    i = j;
  }
  H5Tclose(mt);
  H5Sclose(fspace);
  if (!problem.empty()) throw h5_error(file_, problem);
  if (rc < 0) throw h5_error(file_, "cannot read rows of dataset '" + name_ + "' (" + (why.empty() ? read_failure() : why) + ")");
}

bool Hdf5Dataset::checksummed() const {
  hid_t dcpl = H5Dget_create_plist(id_);
  unsigned flags = 0;
  const bool on = H5Pget_filter_by_id2(dcpl, H5Z_FILTER_FLETCHER32, &flags, nullptr, nullptr, 0, nullptr, nullptr) >= 0;
  H5Pclose(dcpl);
  return on;
}

std::vector<uint64_t> Hdf5Dataset::chunk_dims() const {
  hid_t dcpl = H5Dget_create_plist(id_);
  std::vector<uint64_t> out;
  if (H5Pget_layout(dcpl) == H5D_CHUNKED) {
    std::vector<hsize_t> c(std::max<size_t>(dims_.size(), 1));
    const int nd = H5Pget_chunk(dcpl, int(c.size()), c.data());
    if (nd > 0) out.assign(c.begin(), c.begin() + nd);
  }
  H5Pclose(dcpl);
  return out;
}

Hdf5File Hdf5File::create_mpi(const std::string& path, MPI_Comm comm) {
  Hdf5File f;
  f.path_ = path;
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL);
  f.id_ = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  H5Pclose(fapl);
  if (f.id_ < 0) throw h5_error(path, "cannot create file with MPI-IO (does the directory exist on every rank?)");
  return f;
}

void Hdf5File::close() {
  if (id_ < 0) return;
  const herr_t rc = H5Fclose(id_);
  id_ = -1;
  if (rc < 0) throw h5_error(path_, "cannot close file");
}

void Hdf5File::set_attr(const std::string& key, const std::vector<int64_t>& values) {
  hsize_t n = values.size();
  hid_t space = n == 0 ? H5Screate(H5S_NULL) : H5Screate_simple(1, &n, nullptr);
  if (H5Aexists(id_, key.c_str()) > 0) H5Adelete(id_, key.c_str());
  hid_t attr = H5Acreate2(id_, key.c_str(), H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
  herr_t rc = attr < 0 ? -1 : (n == 0 ? 0 : H5Awrite(attr, H5T_NATIVE_INT64, values.data()));
  if (attr >= 0) H5Aclose(attr);
  H5Sclose(space);
  if (rc < 0) throw h5_error(path_, "cannot write attribute '" + key + "'");
}

std::vector<int64_t> Hdf5File::get_attr_int_vector(const std::string& key) const {
  if (H5Aexists(id_, key.c_str()) <= 0) throw h5_error(path_, "no attribute '" + key + "'");
  hid_t attr = H5Aopen(id_, key.c_str(), H5P_DEFAULT);
  hid_t t = H5Aget_type(attr);
  const H5T_class_t cls = H5Tget_class(t);
  H5Tclose(t);
  hid_t space = H5Aget_space(attr);
  const hssize_t n = H5Sget_simple_extent_npoints(space);
  const int nd = H5Sget_simple_extent_ndims(space);
  H5Sclose(space);
  std::vector<int64_t> v(size_t(std::max<hssize_t>(n, 0)));
  herr_t rc = -1;
  if (cls == H5T_INTEGER && nd <= 1) rc = v.empty() ? 0 : H5Aread(attr, H5T_NATIVE_INT64, v.data());
  H5Aclose(attr);
  if (rc < 0) throw h5_error(path_, "attribute '" + key + "' is not a 1-D integer array");
  return v;
}

}  // namespace ladder::core
