// Files that may be gzipped (.json.gz from the PyTorch profiler, .et.gz).
#include <zlib.h>

#include "detail/compressed_file.hpp"
#include "plait/schedule/error.hpp"
#include "plait/schedule/files.hpp"

namespace plait::traces::detail {
namespace {

std::string gunzip(const std::string& bytes) {
  z_stream stream{};
  if (inflateInit2(&stream, 16 + MAX_WBITS) != Z_OK) throw Error("", "cannot start gzip decompression");
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  stream.avail_in = static_cast<uInt>(bytes.size());
  std::string out;
  char buffer[1 << 16];
  int status = Z_OK;
  while (status != Z_STREAM_END) {
    stream.next_out = reinterpret_cast<Bytef*>(buffer);
    stream.avail_out = sizeof buffer;
    status = inflate(&stream, Z_NO_FLUSH);
    if (status != Z_OK && status != Z_STREAM_END) {
      inflateEnd(&stream);
      throw Error("", status == Z_BUF_ERROR ? "truncated gzip data" : "not valid gzip data");
    }
    out.append(buffer, sizeof buffer - stream.avail_out);
  }
  inflateEnd(&stream);
  return out;
}

}  // namespace

std::string read_possibly_gzipped(const std::string& path) {
  std::string bytes = read_text_file(path);
  if (bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1f && static_cast<unsigned char>(bytes[1]) == 0x8b) {
    try {
      return gunzip(bytes);
    } catch (const Error& error) {
      throw error.within(path);
    }
  }
  return bytes;
}

}  // namespace plait::traces::detail
