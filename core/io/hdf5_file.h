#pragma once
// A small RAII layer over the HDF5 C API for ladder's files (encodings, activation stores, checkpoints):
// create a file under a temporary name and rename it into place on commit(), chunked row-major datasets
// written by row ranges (or whole), 1-D float64/int64/uint8 vectors, string/integer/float attributes, and
// group listing. Every error names the file and the object.
#include <hdf5.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor/dtype.h"

namespace ladder::core {

class Hdf5Dataset {
 public:
  Hdf5Dataset() = default;
  Hdf5Dataset(hid_t id, std::string file, std::string name, DType dtype, std::vector<uint64_t> dims)
      : id_(id), file_(std::move(file)), name_(std::move(name)), dtype_(dtype), dims_(std::move(dims)) {}
  ~Hdf5Dataset();
  Hdf5Dataset(Hdf5Dataset&& o) noexcept;
  Hdf5Dataset& operator=(Hdf5Dataset&& o) noexcept;
  Hdf5Dataset(const Hdf5Dataset&) = delete;

  // Writes rows [row0, row0 + rows) (the first dimension) from host memory in the dataset's dtype
  // (f32, f16/bf16 as uint16 bits, i32, i8).
  void write_rows(uint64_t row0, uint64_t rows, const void* data);
  // Same, converting float input to the dataset's float dtype (f32, f16 or bf16).
  void write_rows_from_f32(uint64_t row0, uint64_t rows, const float* data);
  void read_rows(uint64_t row0, uint64_t rows, void* data) const;
  // The whole dataset at once (any rank, scalars and empty datasets included), in the dataset's dtype.
  void write_all(const void* data);
  void read_all(void* data) const;
  void set_attr(const std::string& key, const std::string& value);
  // Reads the listed rows (strictly increasing first-dimension indices) into a dense buffer
  // [rows.size(), dim1, dims[2:]...] in the dataset's dtype, keeping only the first `dim1` entries of the
  // second dimension (0 = all). A dataset laid out as ladder writes them (chunked along rows only, no
  // filters, little-endian, every chunk allocated) is read with one pread per row at its chunk's address,
  // which HDF5 itself reports; any other (a checksummed one included: only H5Dread verifies the checksum)
  // with one H5Dread per run of consecutive rows. Not thread-safe.
  void read_row_list(const std::vector<uint64_t>& rows, uint64_t dim1, void* data) const;
  // The same for rows in any order, repeats allowed: row i of `data` is rows[i] (each read straight into
  // its place on the pread path; sorted, read and placed otherwise).
  void read_rows_at(const std::vector<uint64_t>& rows, uint64_t dim1, void* data) const;
  // The chunk shape; empty for a contiguous (or scalar) dataset.
  std::vector<uint64_t> chunk_dims() const;
  // Whether HDF5's Fletcher-32 filter guards the chunks (a corrupt chunk is then a read error).
  bool checksummed() const;
  const std::vector<uint64_t>& dims() const { return dims_; }
  DType dtype() const { return dtype_; }

 private:
  hid_t id_ = -1;
  std::string file_, name_;
  DType dtype_ = DType::f32;
  std::vector<uint64_t> dims_;
  struct DirectRows;  // chunk addresses and a read-only descriptor, built by the first read_row_list
  mutable std::shared_ptr<const DirectRows> direct_;
  mutable bool direct_checked_ = false;
  std::shared_ptr<const DirectRows> direct_rows() const;
  size_t row_list_bytes(uint64_t dim1) const;  // one row of a row list (its first dim1 columns)
};

class Hdf5File {
 public:
  // Creates `path` + ".tmp"; commit() flushes, closes and renames it to `path`. Destroying an uncommitted
  // file removes the temporary, so an interrupted write never leaves a half file under the real name.
  static Hdf5File create(const std::string& path);
  static Hdf5File open_read(const std::string& path);
  // Parallel HDF5 (MPI-IO): every rank of `comm` calls this with the same path and creates the file at exactly
  // `path` (no temporary and no rename: the caller names it and renames it; commit() does nothing here).
  // Metadata calls (create_dataset, create_group, set_attr, close) are collective: every rank makes them with
  // the same arguments in the same order. Dataset row writes are independent (each rank its own rows).
  static Hdf5File create_mpi(const std::string& path, MPI_Comm comm);
  // Closes the file now (collectively for an MPI file), reporting a failed close. A file from create() that
  // was not committed keeps its temporary until destruction, which removes it.
  void close();
  ~Hdf5File();
  Hdf5File(Hdf5File&& o) noexcept;
  Hdf5File& operator=(Hdf5File&& o) noexcept = delete;
  Hdf5File(const Hdf5File&) = delete;

  // A chunked dataset of `dims`; chunks hold `chunk_rows` rows (clamped to [1, dims[0]]). Empty `dims` makes a
  // scalar dataset; a zero first dimension a contiguous empty one. Missing intermediate groups are created.
  // `checksum`: HDF5's Fletcher-32 filter on the chunks, so that a damaged chunk is a read error naming the
  // file and the dataset instead of wrong values. Parallel HDF5 1.10 writes filtered datasets only with
  // collective I/O: an MPI file whose ranks write independently needs checksum = false.
  Hdf5Dataset create_dataset(const std::string& name, DType dtype, const std::vector<uint64_t>& dims,
                             uint64_t chunk_rows = 64, bool checksum = true);
  Hdf5Dataset open_dataset(const std::string& name) const;
  // `track_order`: the group remembers the order its members were created in, and list_group returns them
  // in that order (h5py: track_order=True); otherwise members list by name.
  void create_group(const std::string& name, bool track_order = false);
  // Whether a link `name` exists (every intermediate group must exist too); whether it is a group.
  bool exists(const std::string& name) const;
  bool is_group(const std::string& name) const;
  // The names of a group's members ("/" is the root), in creation order when tracked, else by name.
  std::vector<std::string> list_group(const std::string& name) const;

  // 1-D datasets of element types outside DType: float64 series, int64 vectors, raw bytes (chunked, with
  // the Fletcher-32 checksum; not for MPI files).
  void write_vector(const std::string& name, const std::vector<double>& v);
  void write_vector(const std::string& name, const std::vector<int64_t>& v);
  void write_vector(const std::string& name, const std::vector<uint8_t>& v);
  // Read a 1-D dataset: f64 converts any numeric type; i64 any integer type; u8 needs 1-byte integers.
  std::vector<double> read_f64_vector(const std::string& name) const;
  std::vector<int64_t> read_i64_vector(const std::string& name) const;
  std::vector<uint8_t> read_u8_vector(const std::string& name) const;

  // Root attributes.
  void set_attr(const std::string& key, const std::string& value);
  void set_attr(const std::string& key, int64_t value);
  void set_attr_f64(const std::string& key, double value);
  // A 1-D int64 attribute (h5py: a numpy int64 array); get_attr_int_vector also reads a scalar as one value.
  void set_attr(const std::string& key, const std::vector<int64_t>& values);
  std::vector<int64_t> get_attr_int_vector(const std::string& key) const;
  bool has_attr(const std::string& key) const;
  std::vector<std::string> attr_names() const;  // in name order
  bool attr_is_string(const std::string& key) const;
  std::string get_attr_string(const std::string& key) const;
  int64_t get_attr_int(const std::string& key) const;   // an integer attribute (throws for strings, floats)
  double get_attr_f64(const std::string& key) const;    // any numeric attribute, converted
  // Flushes, closes and renames the temporary into place. `durable` also fsyncs the file before the rename
  // and the directory after it, so the new name survives a power loss, not just a killed process.
  void commit(bool durable = false);
  const std::string& path() const { return path_; }

 private:
  Hdf5File() = default;
  hid_t id_ = -1;
  std::string path_, tmp_path_;
  bool writing_ = false;
};

}  // namespace ladder::core
