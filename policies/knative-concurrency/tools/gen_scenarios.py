#!/usr/bin/env python3
"""Writes ../scenarios/*.json: per-second signal samples for each tick plus the
expectations worked out by hand (the arithmetic is in the comments below; nothing here
runs the policy). Re-run after editing: python3 tools/gen_scenarios.py"""
import json, os

BASE = 1_767_225_600_000  # 2026-01-01T00:00:00Z
OUT = os.path.join(os.path.dirname(__file__), "..", "scenarios")


def workload(replicas, ready):
    return {"kind": "Deployment", "namespace": "default", "name": "app", "replicas": replicas,
            "readyReplicas": ready, "minReplicas": 0, "maxReplicas": 100}


def tick(t, replicas, ready, signal, load, history_s, expect):
    samples = [[BASE + s * 1000, load(s)] for s in range(t - history_s + 1, t + 1)]
    return {"nowMs": BASE + t * 1000, "workload": workload(replicas, ready),
            "signals": {signal: samples}, "expect": expect}


def write(name, description, config, ticks):
    with open(os.path.join(OUT, name), "w") as f:
        json.dump({"description": description, "config": config, "ticks": ticks}, f, separators=(",", ":"))
        f.write("\n")


# 1. Default config (target 70, stable 60 s, panic 6 s): a 3x burst.
#    700 until t=100, 2100 for 100 < t <= 120, 700 after.
burst = lambda s: 2100.0 if 100 < s <= 120 else 700.0
b = lambda t, r, rd, e: tick(t, r, rd, "concurrency", burst, 120, e)
write("burst-3x-panic.json",
      "default KPA: 10 pods at 700 concurrency, a 3x burst panics within one panic window, no scale-down during panic, then at most halving",
      {},
      [
          # Fresh autoscaler with 10 ready pods starts in panic (maxPanicPods 10).
          b(0, 10, 10, {"replicas": 10, "reasonContains": "panic"}),
          # 0 + 60 s < 62: panic over; 700 / 70 = 10.
          b(62, 10, 10, {"replicas": 10, "reasonContains": "left panic"}),
          # panic (96,102]: (4x700 + 2x2100)/6 = 1166.7 -> 17, 1.7x < 2; stable (58x700 + 2x2100)/60 = 746.7 -> 11.
          b(102, 10, 10, {"replicas": 11, "reasonContains": "stable: 746.7 avg concurrency over 60s vs target 70 -> 11"}),
          # panic (2x700 + 4x2100)/6 = 1633.3 -> 24, 2.4x >= 2 -> PANIC; max(stable 12, 24) = 24.
          b(104, 11, 10, {"replicas": 24, "reasonContains": "entering panic: 2.40x of 10 ready"}),
          # panic 2100 -> 30, 3.0x: still breaching (panicTime 106) -> 30.
          b(106, 24, 10, {"replicas": 30}),
          # 30 ready: 30/30 = 1.0x, no breach; stable (60,120] = (40x700+20x2100)/60 = 1166.7 -> 17 < maxPanicPods 30.
          b(120, 30, 30, {"replicas": 30, "reasonContains": "holding max 30"}),
          # burst over; 106 + 60 = 166 is not before 166: still panicking, no scale-down.
          b(166, 30, 30, {"replicas": 30}),
          # panic ends; stable (108,168] = (12x2100 + 48x700)/60 = 980 -> 14, clamped to floor(30/2) = 15.
          b(168, 30, 30, {"replicas": 15, "reasonContains": "left panic"}),
          # stable (110,170] = (10x2100 + 50x700)/60 = 933.3 -> 14 >= floor(15/2) = 7.
          b(170, 15, 15, {"replicas": 14}),
      ])

# 2. stableWindow 6s (panic window 0.6 s -> 1 s), grace 10s, activationScale 2.
#    50 concurrency until t=20, idle, one request (3 in flight) at t=60.
idle = lambda s: 50.0 if s <= 20 else (3.0 if s == 60 else 0.0)
i = lambda t, r, rd, e: tick(t, r, rd, "concurrency", idle, 12, e)
write("idle-to-zero-and-activation.json",
      "stable window 6s, grace 10s, activationScale 2: idle -> zero after the stable window and grace; first request -> 2 pods",
      {"stableWindow": "6s", "scaleToZeroGracePeriod": "10s", "activationScale": 2},
      [
          # 50/70 -> 1, raised to activationScale 2 (dspc > 0).
          i(0, 1, 1, {"replicas": 2}),
          i(20, 2, 2, {"replicas": 2}),
          # stable (18,24] = 100/6 = 16.7 -> 1 -> activation 2.
          i(24, 2, 2, {"replicas": 2}),
          # stable 0 -> dspc 0; floor(2/2) = 1 -> 1 (activation scale not applied at dspc 0).
          i(26, 2, 2, {"replicas": 1}),
          # floor(1/2) = 0 -> desired 0; active since t=0 >= 6 s -> inactive, keep the pod.
          i(28, 1, 1, {"replicas": 1, "reasonContains": "inactive, scale to zero after 10s"}),
          i(30, 1, 1, {"replicas": 1, "reasonContains": "inactive for 2s of the 10s grace period"}),
          i(36, 1, 1, {"replicas": 1}),
          # inactive for 10 s >= grace -> 0.
          i(38, 1, 1, {"replicas": 0, "reasonContains": "scaling to zero"}),
          i(40, 0, 0, {"replicas": 0, "reasonContains": "idle at zero"}),
          # first request: stable 3/6 = 0.5 -> 1 -> activationScale 2; panic 3 -> 1, 1/1 < 2.
          i(60, 0, 0, {"replicas": 2}),
      ])

# 3. metric rps (target 200 x 70 % = 140), stableWindow 6s, scaleDownDelay 6s (3 ticks).
#    140 rps until t=10, 700 for 10 < t <= 30, 140 after.
rps = lambda s: 700.0 if 10 < s <= 30 else 140.0
# 120 s of samples per tick: the window the policy declares (the host always hands it over;
# the windows read the seconds leaving them back from it).
r = lambda t, rep, rd, e: tick(t, rep, rd, "rps", rps, 120, e)
write("rps-panic-and-scale-down-delay.json",
      "metric rps (target 140), stable window 6s, scale-down delay 6s: burst panics, the drop is released over the delay window",
      {"metric": "rps", "stableWindow": "6s", "scaleDownDelay": "6s"},
      [
          r(0, 1, 1, {"replicas": 1}),  # 140/140 = 1
          # stable (6,12] = (4x140 + 2x700)/6 = 326.7 -> 3; panic (1 s) 700 -> 5, 5x >= 2 -> panic -> 5.
          r(12, 1, 1, {"replicas": 5, "reasonContains": "entering panic"}),
          # stable (2x140 + 4x700)/6 = 513.3 -> 4; panic 5/5 = 1x; panic holds 5.
          r(14, 5, 5, {"replicas": 5}),
          # 12 + 6 < 20: panic over; stable 700 -> 5.
          r(20, 5, 5, {"replicas": 5, "reasonContains": "left panic"}),
          r(30, 5, 5, {"replicas": 5}),
          # stable (4x700 + 2x140)/6 = 513.3 -> 4; delay window max(5 @t30, 4) = 5.
          r(32, 5, 5, {"replicas": 5, "reasonContains": "scale-down delay 6s: staying at 5 instead of 4"}),
          # stable (2x700 + 4x140)/6 = 326.7 -> 3; window {5 @30, 4 @32, 3} -> 5.
          r(34, 5, 5, {"replicas": 5}),
          # stable 140 -> 1, clamped to floor(5/2) = 2; t=30 aged out -> max(4, 3, 2) = 4.
          r(36, 5, 5, {"replicas": 4}),
          # 4 ready: floor(4/2) = 2; window {3 @34, 2 @38} -> 3.
          r(38, 4, 4, {"replicas": 3}),
          # 3 ready: floor(3/2) = 1 -> 1; window {2 @38, 1 @40} -> 2.
          r(40, 3, 3, {"replicas": 2}),
      ])
