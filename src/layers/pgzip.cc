#include "layers/pgzip.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>

namespace ocib::layers {

namespace {
constexpr size_t kDictSize = 32 << 10;
constexpr size_t kMinStoreCheck = 4 << 10;  // smaller blocks always go through deflate

// Whether deflate would gain next to nothing on p[0, n): the byte values are spread almost
// evenly (order-2 Renyi entropy >= ~7.96 bits per byte, so Huffman coding alone saves under
// ~0.5%) and hardly any 8-byte string repeats within deflate's 32 KiB window. Such blocks
// (already-compressed or random data) are where zlib spends most of its time for no gain,
// so they are stored instead. Integer arithmetic only: the decision, and so the output,
// depends on the bytes alone, on every machine.
bool incompressible(const unsigned char* p, size_t n) {
  if (n < kMinStoreCheck) return false;
  uint32_t count[256] = {};
  for (size_t i = 0; i < n; ++i) ++count[p[i]];
  uint64_t sumsq = 0;
  for (uint32_t c : count) sumsq += uint64_t{c} * c;
  // sum(p_i^2) <= 1.03 / 256  <=>  H2 >= 8 - log2(1.03)
  if (uint64_t{100} * 256 * sumsq > uint64_t{103} * n * n) return false;
  // A tiny LZ probe: count bytes covered by 8-byte repeats a hash table finds.
  constexpr int kHashBits = 12;
  uint32_t last[1u << kHashBits] = {};  // position + 1 of the latest string with this hash
  size_t matched = 0;
  for (size_t i = 0; i + 8 <= n; ++i) {
    uint64_t v;
    std::memcpy(&v, p + i, 8);
    auto h = static_cast<uint32_t>((v * 0x9E3779B97F4A7C15ull) >> (64 - kHashBits));
    uint32_t cand = last[h];
    last[h] = static_cast<uint32_t>(i + 1);
    if (cand != 0 && i + 1 - cand <= kDictSize) {
      uint64_t u;
      std::memcpy(&u, p + cand - 1, 8);
      if (u == v) {
        matched += 8;
        i += 7;
      }
    }
  }
  return matched * 100 < n;  // under 1% of the block in matches
}

// Stored deflate blocks (at most 65535 bytes each) for p[0, n), starting byte-aligned; the
// last one is final when `last`. An empty final input is one empty final block.
void store_blocks(const unsigned char* p, size_t n, bool last, std::vector<unsigned char>& out) {
  out.clear();
  out.reserve(n + (n / 65535 + 1) * 5);
  size_t off = 0;
  do {
    size_t len = std::min<size_t>(n - off, 65535);
    bool final = last && off + len == n;
    unsigned char hdr[5] = {static_cast<unsigned char>(final ? 1 : 0),
                            static_cast<unsigned char>(len), static_cast<unsigned char>(len >> 8),
                            static_cast<unsigned char>(~len),
                            static_cast<unsigned char>(~len >> 8)};
    out.insert(out.end(), hdr, hdr + 5);
    out.insert(out.end(), p + off, p + off + len);
    off += len;
  } while (off < n);
}
}  // namespace

struct ParallelGzip::Job {
  std::vector<unsigned char> in;
  size_t in_len = 0;
  std::vector<unsigned char> dict;
  bool last = false;
  std::vector<unsigned char> out;
  uLong crc = 0;
  bool done = false;
  bool failed = false;
};

ParallelGzip::ParallelGzip(int level, int threads, Sink sink)
    : level_(level),
      sink_(std::move(sink)),
      max_inflight_(static_cast<size_t>(std::max(threads, 1)) * 2) {
  cur_.reserve(kBlockSize);
  for (int i = 0; i < std::max(threads, 1); ++i) threads_.emplace_back([this] { worker(); });
}

ParallelGzip::~ParallelGzip() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    todo_.clear();  // abandoned after an error: do not compress the rest
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void ParallelGzip::worker() {
  z_stream zs{};
  bool init = false;
  for (;;) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !todo_.empty(); });
      if (todo_.empty()) break;
      job = std::move(todo_.front());
      todo_.pop_front();
      job->out = take_spare(spare_out_);
    }
    bool ok = true;
    if (level_ != 0 && incompressible(job->in.data(), job->in.size())) {
      job->crc = crc32(0L, job->in.data(), static_cast<uInt>(job->in.size()));
      store_blocks(job->in.data(), job->in.size(), job->last, job->out);
      {
        std::lock_guard<std::mutex> lock(mu_);
        job->done = true;
        give_spare(spare_in_, std::move(job->in));
        job->dict = {};
      }
      cv_.notify_all();
      continue;
    }
    if (!init) {
      ok = deflateInit2(&zs, level_, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK;
      init = ok;
    } else {
      ok = deflateReset(&zs) == Z_OK;
    }
    if (ok && !job->dict.empty()) {
      ok = deflateSetDictionary(&zs, job->dict.data(), static_cast<uInt>(job->dict.size())) == Z_OK;
    }
    if (ok) {
      job->crc = crc32(0L, job->in.data(), static_cast<uInt>(job->in.size()));
      job->out.resize(deflateBound(&zs, job->in.size()) + 64);
      zs.next_in = job->in.data();
      zs.avail_in = static_cast<uInt>(job->in.size());
      size_t produced = 0;
      int flush = job->last ? Z_FINISH : Z_SYNC_FLUSH;
      for (;;) {
        zs.next_out = job->out.data() + produced;
        zs.avail_out = static_cast<uInt>(job->out.size() - produced);
        int rc = deflate(&zs, flush);
        produced = job->out.size() - zs.avail_out;
        if (rc == Z_STREAM_ERROR) {
          ok = false;
          break;
        }
        bool complete = job->last ? rc == Z_STREAM_END : (zs.avail_in == 0 && zs.avail_out != 0);
        if (complete) break;
        job->out.resize(job->out.size() * 2);
      }
      job->out.resize(produced);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      job->done = true;
      job->failed = !ok;
      give_spare(spare_in_, std::move(job->in));
      job->dict = {};
    }
    cv_.notify_all();
  }
  if (init) deflateEnd(&zs);
}

void ParallelGzip::submit(bool last) {
  auto job = std::make_shared<Job>();
  job->in = std::move(cur_);
  job->dict = dict_;
  job->last = last;
  job->in_len = job->in.size();
  // Blocks are longer than the window, so the previous block's tail is the whole history.
  size_t keep = std::min(kDictSize, job->in.size());
  dict_.assign(job->in.end() - static_cast<std::ptrdiff_t>(keep), job->in.end());
  total_in_ += job->in_len;
  {
    std::lock_guard<std::mutex> lock(mu_);
    cur_ = take_spare(spare_in_);
    order_.push_back(job);
    todo_.push_back(std::move(job));
  }
  cv_.notify_all();
}

Status ParallelGzip::emit_front() {
  std::shared_ptr<Job> job;
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return order_.front()->done; });
    job = std::move(order_.front());
    order_.pop_front();
  }
  if (job->failed) return Error(Errc::kGeneric, "deflate failed");
  crc_ = static_cast<uint32_t>(crc32_combine(crc_, job->crc, static_cast<z_off_t>(job->in_len)));
  Status st = sink_(job->out.data(), job->out.size());
  std::lock_guard<std::mutex> lock(mu_);
  give_spare(spare_out_, std::move(job->out));
  return st;
}

// Block buffers are reused: a fresh 128 KiB allocation per block costs page faults (and mmap
// calls) on every block. Callers hold mu_.
std::vector<unsigned char> ParallelGzip::take_spare(std::vector<std::vector<unsigned char>>& pool) {
  std::vector<unsigned char> b;
  if (!pool.empty()) {
    b = std::move(pool.back());
    pool.pop_back();
  }
  b.clear();
  b.reserve(kBlockSize);
  return b;
}

void ParallelGzip::give_spare(std::vector<std::vector<unsigned char>>& pool,
                              std::vector<unsigned char>&& b) {
  if (pool.size() < 2 * max_inflight_ + 2) pool.push_back(std::move(b));
}

Status ParallelGzip::write(const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  if (!header_written_) {
    // mtime 0, no name: reproducible. XFL as zlib sets it; OS 3 (Unix).
    int lvl = level_ < 0 ? 6 : level_;
    unsigned char xfl = lvl == 9 ? 2 : (lvl < 2 ? 4 : 0);
    const unsigned char hdr[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 3};
    OCIB_TRY(sink_(hdr, sizeof hdr));
    header_written_ = true;
  }
  while (n > 0) {
    size_t take = std::min(n, kBlockSize - cur_.size());
    cur_.insert(cur_.end(), p, p + take);
    p += take;
    n -= take;
    if (cur_.size() == kBlockSize) {
      submit(false);
      while (order_.size() > max_inflight_) OCIB_TRY(emit_front());
    }
  }
  return {};
}

Status ParallelGzip::finish() {
  if (!header_written_) OCIB_TRY(write(nullptr, 0));
  submit(true);
  while (!order_.empty()) OCIB_TRY(emit_front());
  unsigned char trailer[8];
  uint32_t isize = static_cast<uint32_t>(total_in_);
  for (int i = 0; i < 4; ++i) {
    trailer[i] = static_cast<unsigned char>(crc_ >> (8 * i));
    trailer[4 + i] = static_cast<unsigned char>(isize >> (8 * i));
  }
  return sink_(trailer, sizeof trailer);
}

}  // namespace ocib::layers
