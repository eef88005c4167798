#pragma once
// Damaging HDF5 files on purpose, for the tests that show corruption is detected: where a dataset's data
// lies in the file, and one byte changed there.
#include <hdf5.h>

#include <cstdint>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace ladder::test {

// The file offset of a chunked dataset's first chunk, as HDF5 reports it.
inline uint64_t first_chunk_offset(const std::string& path, const std::string& dataset) {
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  const hid_t d = H5Dopen2(f, dataset.c_str(), H5P_DEFAULT);
  hsize_t coord[3] = {0, 0, 0};
  unsigned mask = 0;
  haddr_t addr = HADDR_UNDEF;
  hsize_t size = 0;
  EXPECT_GE(H5Dget_chunk_info_by_coord(d, coord, &mask, &addr, &size), 0) << path << " " << dataset;
  H5Dclose(d);
  H5Fclose(f);
  return uint64_t(addr);
}

// XORs the byte at `at` with `bits`.
inline void flip_byte(const std::string& path, uint64_t at, char bits = 0x10) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(std::streamoff(at));
  const char c = char(f.get());
  f.seekp(std::streamoff(at));
  f.put(char(c ^ bits));
}

}  // namespace ladder::test
