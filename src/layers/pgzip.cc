#include "layers/pgzip.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>

namespace ocib::layers {

namespace {
constexpr size_t kDictSize = 32 << 10;
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
    }
    bool ok = true;
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
      job->in = {};
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
  cur_ = {};
  cur_.reserve(kBlockSize);
  {
    std::lock_guard<std::mutex> lock(mu_);
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
  return sink_(job->out.data(), job->out.size());
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
