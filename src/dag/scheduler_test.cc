#include "dag/scheduler.h"
#include "dag/critical_path.h"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <thread>

namespace ocib::dag {
namespace {

using namespace std::chrono_literals;

// Work that sleeps and records how many such vertices ran at once at most.
struct ConcurrencyProbe {
  std::atomic<int> live{0}, peak{0};
  std::function<Status()> work(std::chrono::milliseconds d) {
    return [this, d]() -> Status {
      int now = ++live;
      int p = peak.load();
      while (now > p && !peak.compare_exchange_weak(p, now)) {
      }
      std::this_thread::sleep_for(d);
      --live;
      return {};
    };
  }
};

TEST(Scheduler, RunsDependenciesFirstAndOnlyAncestorsOfTargets) {
  Graph g;
  std::mutex mu;
  std::vector<std::string> order;
  auto rec = [&](std::string s) {
    return [&, s]() -> Status {
      std::lock_guard<std::mutex> lk(mu);
      order.push_back(s);
      return {};
    };
  };
  VertexId a = g.add({"a", {}, rec("a")});
  VertexId b = g.add({"b", {a}, rec("b")});
  VertexId unrelated = g.add({"x", {}, rec("x")});
  VertexId c = g.add({"c", {a, b}, rec("c")});
  (void)unrelated;
  Report rep;
  ASSERT_TRUE(Scheduler(4).run(g, {c}, &rep).ok());
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_FALSE(rep.timings[unrelated].ran);
  EXPECT_TRUE(rep.timings[c].ran);
}

TEST(Scheduler, IndependentVerticesOverlap) {
  Graph g;
  ConcurrencyProbe probe;
  auto work = probe.work(50ms);
  VertexId base = g.add({"base", {}, work});
  std::vector<VertexId> branches;
  for (int i = 0; i < 4; ++i) branches.push_back(g.add({"b", {base}, work}));
  VertexId fin = g.add({"final", branches, work});
  Report rep;
  ASSERT_TRUE(Scheduler(4).run(g, {fin}, &rep).ok());
  EXPECT_EQ(probe.peak.load(), 4);
  // Every branch started before any branch completed.
  for (VertexId x : branches)
    for (VertexId y : branches) EXPECT_LT(rep.timings[x].started, rep.timings[y].completed);
}

TEST(Scheduler, JobsBoundsConcurrency) {
  Graph g;
  ConcurrencyProbe probe;
  std::vector<VertexId> all;
  for (int i = 0; i < 6; ++i) all.push_back(g.add({"v", {}, probe.work(20ms)}));
  ASSERT_TRUE(Scheduler(2).run(g, all).ok());
  EXPECT_EQ(probe.peak.load(), 2);
}

// Two schedulers (two platforms of one build) sharing 3 slots run at most 3 vertices at once
// between them, though each alone could run 3.
TEST(Scheduler, SharedJobSlotsBoundTheSum) {
  ConcurrencyProbe probe;
  auto work = probe.work(20ms);
  Graph g1, g2;
  std::vector<VertexId> a1, a2;
  for (int i = 0; i < 6; ++i) {
    a1.push_back(g1.add({"a", {}, work}));
    a2.push_back(g2.add({"b", {}, work}));
  }
  auto slots = std::make_shared<JobSlots>(3);
  Status s1, s2;
  std::thread t1([&] { s1 = Scheduler(3, {}, slots).run(g1, a1); });
  std::thread t2([&] { s2 = Scheduler(3, {}, slots).run(g2, a2); });
  t1.join();
  t2.join();
  ASSERT_TRUE(s1.ok() && s2.ok());
  EXPECT_EQ(probe.peak.load(), 3);
}

TEST(Scheduler, FirstFailureCancelsRestAndIsReported) {
  Graph g;
  std::atomic<bool> hook{false};
  std::atomic<int> ran_after{0};
  VertexId bad = g.add({"bad", {}, []() -> Status { return Error(Errc::kFailedStep, "boom"); }});
  VertexId dep = g.add({"dep", {bad}, [&]() -> Status {
                          ++ran_after;
                          return {};
                        }});
  Report rep;
  Status st = Scheduler(1, [&] { hook = true; }).run(g, {dep}, &rep);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message(), "boom");
  EXPECT_TRUE(hook.load());
  EXPECT_EQ(ran_after.load(), 0);
  EXPECT_EQ(rep.cancelled, 1u);
  ASSERT_TRUE(rep.failed.has_value());
  EXPECT_EQ(*rep.failed, bad);
}

TEST(Scheduler, CriticalPathFirst) {
  // With one job, the vertex heading the longer chain runs before the short one.
  Graph g;
  std::vector<std::string> order;
  auto rec = [&](std::string s) {
    return [&, s]() -> Status {
      order.push_back(s);
      return {};
    };
  };
  VertexId shortv = g.add({"short", {}, rec("short"), 1});
  VertexId long1 = g.add({"long1", {}, rec("long1"), 1});
  VertexId long2 = g.add({"long2", {long1}, rec("long2"), 5});
  ASSERT_TRUE(Scheduler(1).run(g, {shortv, long2}).ok());
  EXPECT_EQ(order.front(), "long1");
}

}  // namespace
}  // namespace ocib::dag

namespace ocib::dag {
namespace {

TEST(CriticalPath, FollowsTheLongestChainToTheEnd) {
  // 0 -> 1 -> 3, 0 -> 2 -> 3: via 2 costs more.
  std::vector<std::vector<size_t>> deps = {{}, {0}, {0}, {1, 2}, {}};
  std::vector<double> cost = {1, 2, 5, 1, 100};  // 4 is not on any path to 3
  auto cp = critical_path(deps.size(), [&](size_t v) { return deps[v]; }, [&](size_t v) { return cost[v]; }, 3);
  EXPECT_DOUBLE_EQ(cp.length, 7);
  EXPECT_EQ(cp.path, (std::vector<size_t>{0, 2, 3}));
  EXPECT_DOUBLE_EQ(cp.lengths[1], 3);
  EXPECT_LT(cp.lengths[4], 0);
  // Equal lengths: the first listed dependency.
  cost[2] = 2;
  cp = critical_path(deps.size(), [&](size_t v) { return deps[v]; }, [&](size_t v) { return cost[v]; }, 3);
  EXPECT_EQ(cp.path, (std::vector<size_t>{0, 1, 3}));
}

TEST(CriticalPath, DeepChainsDoNotRecurse) {
  const size_t n = 200000;
  auto cp = critical_path(
      n, [](size_t v) { return v ? std::vector<size_t>{v - 1} : std::vector<size_t>{}; }, [](size_t) { return 1.0; },
      n - 1);
  EXPECT_DOUBLE_EQ(cp.length, static_cast<double>(n));
  EXPECT_EQ(cp.path.size(), n);
}

}  // namespace
}  // namespace ocib::dag
