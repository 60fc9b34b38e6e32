#pragma once
// Parallel gzip (the pigz scheme): the input is cut into fixed blocks, each deflated on a
// worker thread with the previous 32 KiB as dictionary and ended with a sync flush, and the
// pieces are concatenated into one gzip member whose CRC is combined with crc32_combine.
// A block that deflate would not shrink (evenly spread bytes, no repeats: compressed or random
// data) is written as stored blocks instead of being deflated: on such data zlib spends most of
// its time and gains nothing.
// The output depends only on the input and level (never on thread count or timing).

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "base/error.h"

namespace ocib::layers {

class ParallelGzip {
 public:
  using Sink = std::function<Status(const void* data, size_t n)>;
  static constexpr size_t kBlockSize = 128 << 10;

  /// level: zlib level (-1 default, 0..9); threads >= 1 compressing workers.
  ParallelGzip(int level, int threads, Sink sink);
  ~ParallelGzip();
  ParallelGzip(const ParallelGzip&) = delete;
  ParallelGzip& operator=(const ParallelGzip&) = delete;

  Status write(const void* data, size_t n);
  /// Compresses what is left and writes the trailer; call once.
  Status finish();

 private:
  struct Job;
  void submit(bool last);
  Status emit_front();
  void worker();
  std::vector<unsigned char> take_spare(std::vector<std::vector<unsigned char>>& pool);
  void give_spare(std::vector<std::vector<unsigned char>>& pool, std::vector<unsigned char>&& b);

  int level_;
  Sink sink_;
  size_t max_inflight_;
  std::vector<unsigned char> cur_;          // block being filled
  std::vector<unsigned char> dict_;         // last 32 KiB of the previous block
  std::deque<std::shared_ptr<Job>> order_;  // submitted, not yet emitted
  std::deque<std::shared_ptr<Job>> todo_;   // submitted, not yet started
  std::vector<std::vector<unsigned char>> spare_in_, spare_out_;  // reusable block buffers
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool header_written_ = false;
  uint32_t crc_ = 0;
  uint64_t total_in_ = 0;
  std::vector<std::thread> threads_;
};

}  // namespace ocib::layers
