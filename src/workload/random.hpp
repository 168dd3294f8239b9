// Portable pseudo-random numbers for workload generation: splitmix64 for seeding and
// hashing, xoshiro256** as the stream generator, and our own uniform/normal
// transforms. The standard <random> distributions are deliberately not used: their
// algorithms are unspecified, so libstdc++, libc++ and MSVC turn the same engine
// output into different numbers, and a workload must be the same on every platform.
#pragma once

#include <cmath>
#include <cstdint>

namespace minipt {

// One splitmix64 step (Steele, Lea, Flood 2014): a bijective 64-bit mixer, used both
// to expand a seed into generator state and as a cheap hash.
constexpr uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Hash of a value: the output of one splitmix64 step started at `x`.
constexpr uint64_t mix64(uint64_t x) { return splitmix64(x); }

// Hash of an ordered tuple of 64-bit values (each fed through the mixer in turn, so
// (a, b) and (b, a) differ).
constexpr uint64_t hash_combine(uint64_t h, uint64_t v) { return mix64(h ^ mix64(v)); }

// xoshiro256** 1.0 (Blackman, Vigna 2018): 256-bit state, period 2^256 − 1, passes
// BigCrush; fast enough to draw one number per token.
class Xoshiro256 {
 public:
  explicit constexpr Xoshiro256(uint64_t seed) {
    uint64_t sm = seed;
    for (uint64_t& word : s_) word = splitmix64(sm);
  }

  constexpr uint64_t next() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // Uniform double in [0, 1): the top 53 bits scaled by 2^-53 (every value exact).
  constexpr double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

  // Uniform double in (0, 1]: never zero, safe for log() and negative powers.
  constexpr double uniform_open0() { return static_cast<double>((next() >> 11) + 1) * 0x1.0p-53; }

  // Uniform integer in [0, n), n ≥ 1, without modulo bias: reject draws below
  // 2^64 mod n so that the accepted range is a whole multiple of n.
  constexpr uint64_t below(uint64_t n) {
    const uint64_t threshold = (0 - n) % n;
    for (;;) {
      const uint64_t x = next();
      if (x >= threshold) return x % n;
    }
  }

  // Standard normal by Marsaglia's polar method: needs only log and sqrt (no trig),
  // whose results IEEE-conforming libms agree on far more closely than on sin/cos.
  // The second variate of each pair is discarded so a draw never depends on history
  // beyond the generator state.
  double normal() {
    for (;;) {
      const double u = 2.0 * uniform() - 1.0;
      const double v = 2.0 * uniform() - 1.0;
      const double s = u * u + v * v;
      if (s > 0.0 && s < 1.0) return u * std::sqrt(-2.0 * std::log(s) / s);
    }
  }

 private:
  static constexpr uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4] = {0, 0, 0, 0};
};

}  // namespace minipt
