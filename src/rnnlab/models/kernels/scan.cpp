// Fused CPU scans for the diagonal linear recurrence h_t = a_t * h_{t-1} + b_t, forward and
// reverse-scan backward, and the gated form of minGRU / minLSTM with its gate activations fused
// in (a_t = 1 - sigma(k_t), b_t = sigma(k_t) g(v_t)).
//
// The recurrence has no matmul inside its time loop: each step is one elementwise pass, so the
// cost is the passes over memory. Here a forward is one read of the inputs and one write of h;
// a backward is one read of a (or k, v), h and dL/dh and one write of the input gradients.
//
// Layouts: every operand is a (T, M, K) view with any strides (the caller folds the non-time
// dims into two, or copies where they do not fold; a stride 0 reads a broadcast operand); the
// outputs the kernels allocate, h and the linear scan's gradients, are contiguous (T, M, K).
// The M*K independent recurrences are split into one contiguous block per thread; each thread
// runs the whole time loop over its block, a row of K numbers at a time, vectorised along K when
// every operand has unit stride there.
#include <torch/extension.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <type_traits>
#include <vector>

namespace {

// The gate functions must inline into the row loops, or those loops do not vectorise: GCC's
// inliner left them out of some of the loops' instantiations, which then ran 6x slower.
#define RNNLAB_INLINE inline __attribute__((always_inline))

// exp(x) for float with only mul, add, compares and integer bit moves, so loops vectorise:
// x = n ln2 + r with |r| <= ln2 / 2, e^r by a degree-6 polynomial (Cephes' expf coefficients,
// ~1 ulp), 2^n put into the exponent bits. x is clamped to [-87.3, 88.3] (finite results, the
// smallest one normal).
RNNLAB_INLINE float exp_of(float x) {
  x = std::min(std::max(x, -87.3f), 88.3f);
  const float n = (x * 1.44269504088896341f + 12582912.f) - 12582912.f;  // round to nearest
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}
RNNLAB_INLINE double exp_of(double x) { return std::exp(std::min(x, 700.0)); }

// The gates of one step from the update logit k and the candidate pre-activation v:
// z = sigma(k), keep = a = 1 - z ([0, 1]) or 1 - 2z ([-1, 1], `sign` 2), candidate g(v) =
// sigma(min(v, 0)) + max(v, 0) and its slope g'(v) (sigma' below 0, 1 above). Both keep forms
// are computed from e = exp(-k) without the cancellation of 1 - z: 1 - z = e z, 1 - 2z = (e - 1) z.
template <typename T>
struct Gates {
  T z, keep, candidate, slope;
};

template <typename T, bool Signed>
RNNLAB_INLINE Gates<T> gates_of(T k, T v) {
  // |k| <= 60: z stays a normal float (flushing subnormals to zero would zero 1 - z = e z);
  // the clamp moves h_t by at most sigma(-60) ~ 1e-26 times h_{t-1} or g(v_t) (as the
  // log-space scan's clamp does)
  k = std::min(std::max(k, T(-60)), T(60));
  const T e = exp_of(-k);
  const T z = T(1) / (T(1) + e);
  const T keep = Signed ? (e - T(1)) * z : e * z;
  const T s = T(1) / (T(1) + exp_of(-std::min(v, T(0))));  // sigma(min(v, 0))
  const T candidate = s + std::max(v, T(0));
  const T slope = v > T(0) ? T(1) : s * (T(1) - s);
  return {z, keep, candidate, slope};
}

// A strided (T, M, K) operand: element (t, m, k) at p[t * st + m * sm + k * sk].
template <typename T>
struct View {
  T* p;
  int64_t st, sm, sk;
  T* row(int64_t t, int64_t m) const { return p + t * st + m * sm; }
};

template <typename T>
View<T> view_of(const at::Tensor& x) {
  return {x.data_ptr<T>(), x.stride(0), x.stride(1), x.stride(2)};
}

template <typename T>
View<const T> const_view_of(const at::Tensor& x) {
  return {x.data_ptr<T>(), x.stride(0), x.stride(1), x.stride(2)};
}

// Runs run(first, last) on one block of the flattened M*K recurrences per thread (at least 64
// per block, so that small problems stay on one thread). Worker threads start with autograd on;
// the kernels only touch plain buffers.
template <typename F>
void for_each_block(int64_t total, const F& run) {
  const int64_t threads = std::max<int64_t>(1, at::get_num_threads());
  const int64_t grain = std::max<int64_t>(64, (total + threads - 1) / threads);
  at::parallel_for(0, total, grain, [&](int64_t first, int64_t last) {
    at::NoGradGuard no_grad;
    run(first, last);
  });
}

// The rows of one step that a block [first, last) of the flattened M*K covers: calls
// row(m, k0, k1, offset) for each m, with the block-relative offset of (m, k0).
template <typename F>
inline void for_each_row(int64_t first, int64_t last, int64_t cols, const F& row) {
  for (int64_t m = first / cols; m * cols < last; ++m) {
    const int64_t k0 = std::max(first - m * cols, int64_t(0));
    const int64_t k1 = std::min(last - m * cols, cols);
    row(m, k0, k1, m * cols + k0 - first);
  }
}

// Every (step, row segment) of a block, in time order (or reverse): time outer, rows inner for
// time-major operands (a step's rows lie together), or rows outer, time inner for batch-major
// ones (|stride of M| > |stride of T|: a row's steps lie together, and its state stays in L1).
// row(t, m, k0, k1, offset) as for for_each_row.
template <typename F>
inline void for_each_step(int64_t first, int64_t last, int64_t cols, int64_t steps,
                          bool time_inner, bool reverse, const F& row) {
  const auto step = [&](int64_t i) { return reverse ? steps - 1 - i : i; };
  if (time_inner) {
    for_each_row(first, last, cols, [&](int64_t m, int64_t k0, int64_t k1, int64_t offset) {
      for (int64_t i = 0; i < steps; ++i) row(step(i), m, k0, k1, offset);
    });
  } else {
    for (int64_t i = 0; i < steps; ++i) {
      for_each_row(first, last, cols, [&](int64_t m, int64_t k0, int64_t k1, int64_t offset) {
        row(step(i), m, k0, k1, offset);
      });
    }
  }
}

// Whether x (T, M, K) is batch major: its rows' steps lie closer together than its steps' rows.
inline bool batch_major(const at::Tensor& x) {
  return x.size(1) > 1 && std::abs(x.stride(0)) < std::abs(x.stride(1));
}

// -- h_t = a_t h_{t-1} + b_t ---------------------------------------------------------------

// One row of one step: h = a * previous + b, over n numbers (strides sa, sb for a and b; Unit:
// both are 1, the loop vectorises).
template <typename T, bool Unit>
inline void scan_row(const T* __restrict__ a, int64_t sa, const T* __restrict__ b, int64_t sb,
                     const T* __restrict__ previous, T* __restrict__ h, int64_t n) {
  for (int64_t j = 0; j < n; ++j) h[j] = a[Unit ? j : j * sa] * previous[j] + b[Unit ? j : j * sb];
}

template <typename T, bool Unit>
void scan_forward_block(View<const T> a, View<const T> b, const T* h0, int64_t h0_m, int64_t h0_k,
                        T* out, int64_t steps, int64_t rows, int64_t cols, int64_t first,
                        int64_t last) {
  const int64_t size = rows * cols;
  for_each_row(first, last, cols, [&](int64_t m, int64_t k0, int64_t k1, int64_t) {
    const T* a_ = a.row(0, m) + k0 * a.sk;
    const T* b_ = b.row(0, m) + k0 * b.sk;
    T* h = out + m * cols + k0;
    for (int64_t j = 0; j < k1 - k0; ++j) {  // step 0 reads h0 (any strides) or 0
      const T start = h0 ? h0[m * h0_m + (k0 + j) * h0_k] : T(0);
      h[j] = a_[j * a.sk] * start + b_[j * b.sk];
    }
  });
  for (int64_t t = 1; t < steps; ++t) {
    for_each_row(first, last, cols, [&](int64_t m, int64_t k0, int64_t k1, int64_t) {
      T* h = out + t * size + m * cols + k0;
      scan_row<T, Unit>(a.row(t, m) + k0 * a.sk, a.sk, b.row(t, m) + k0 * b.sk, b.sk, h - size, h,
                        k1 - k0);
    });
  }
}

// a, b (T, M, K), any strides; h0 (M, K), any strides, or undefined (zeros). Returns h (T, M, K),
// contiguous.
at::Tensor linear_scan_forward(const at::Tensor& a, const at::Tensor& b,
                               const std::optional<at::Tensor>& h0) {
  const int64_t steps = b.size(0), rows = b.size(1), cols = b.size(2);
  auto out = at::empty({steps, rows, cols}, b.options());
  if (out.numel() == 0) return out;
  const bool unit = a.stride(2) == 1 && b.stride(2) == 1;
  AT_DISPATCH_FLOATING_TYPES(b.scalar_type(), "linear_scan_forward", [&] {
    const scalar_t* h0_p = h0 ? h0->data_ptr<scalar_t>() : nullptr;
    const int64_t h0_m = h0 ? h0->stride(0) : 0, h0_k = h0 ? h0->stride(1) : 0;
    const auto a_ = const_view_of<scalar_t>(a);
    const auto b_ = const_view_of<scalar_t>(b);
    scalar_t* out_p = out.data_ptr<scalar_t>();
    for_each_block(rows * cols, [&](int64_t first, int64_t last) {
      if (unit) {
        scan_forward_block<scalar_t, true>(a_, b_, h0_p, h0_m, h0_k, out_p, steps, rows, cols,
                                           first, last);
      } else {
        scan_forward_block<scalar_t, false>(a_, b_, h0_p, h0_m, h0_k, out_p, steps, rows, cols,
                                            first, last);
      }
    });
  });
  return out;
}

// One row of one step backward: total = d_h + carry (dL/dh_t through this and every later step),
// d_b = total, d_a = total * previous (previous null: h_{-1} = 0), carry = a * total for step
// t - 1. d_h read with stride sg, a with stride sa (Unit: both 1).
template <typename T, bool Unit>
inline void scan_row_backward(const T* __restrict__ a, int64_t sa, const T* __restrict__ d_h,
                              int64_t sg, const T* __restrict__ previous, T* __restrict__ carry,
                              T* __restrict__ d_a, T* __restrict__ d_b, int64_t n) {
  if (previous) {
    for (int64_t j = 0; j < n; ++j) {
      const T total = d_h[Unit ? j : j * sg] + carry[j];
      d_b[j] = total;
      d_a[j] = total * previous[j];
      carry[j] = a[Unit ? j : j * sa] * total;
    }
  } else {
    for (int64_t j = 0; j < n; ++j) {
      const T total = d_h[Unit ? j : j * sg] + carry[j];
      d_b[j] = total;
      d_a[j] = T(0);
      carry[j] = a[Unit ? j : j * sa] * total;
    }
  }
}

// a (T, M, K) and d_h (T, M, K), any strides; h (T, M, K) contiguous, as the forward returned it;
// h0 (M, K), any strides, or undefined. Returns d_a, d_b (T, M, K), contiguous, and d_h0 (M, K).
std::vector<at::Tensor> linear_scan_backward(const at::Tensor& a, const at::Tensor& h,
                                             const at::Tensor& d_h,
                                             const std::optional<at::Tensor>& h0) {
  const int64_t steps = h.size(0), rows = h.size(1), cols = h.size(2), size = rows * cols;
  auto d_a = at::empty({steps, rows, cols}, h.options());
  auto d_b = at::empty({steps, rows, cols}, h.options());
  auto d_h0 = at::zeros({rows, cols}, h.options());  // = the carry after step 0
  if (h.numel() == 0) return {d_a, d_b, d_h0};
  const bool unit = a.stride(2) == 1 && d_h.stride(2) == 1;
  const auto start = h0 ? h0->contiguous() : at::Tensor();  // (M, K): a small copy at most
  AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "linear_scan_backward", [&] {
    const auto a_ = const_view_of<scalar_t>(a);
    const auto g_ = const_view_of<scalar_t>(d_h);
    const scalar_t* h_p = h.data_ptr<scalar_t>();
    const scalar_t* h0_p = start.defined() ? start.data_ptr<scalar_t>() : nullptr;
    scalar_t* d_a_p = d_a.data_ptr<scalar_t>();
    scalar_t* d_b_p = d_b.data_ptr<scalar_t>();
    scalar_t* carry = d_h0.data_ptr<scalar_t>();  // block [first, last) owns carry[first:last]
    for_each_block(size, [&](int64_t first, int64_t last) {
      for (int64_t t = steps - 1; t >= 0; --t) {
        for_each_row(first, last, cols, [&](int64_t m, int64_t k0, int64_t k1, int64_t) {
          const int64_t at_ = m * cols + k0;
          const scalar_t* previous =
              t > 0 ? h_p + (t - 1) * size + at_ : (h0_p ? h0_p + at_ : nullptr);
          const scalar_t* a_row = a_.row(t, m) + k0 * a_.sk;
          const scalar_t* g_row = g_.row(t, m) + k0 * g_.sk;
          scalar_t* d_a_row = d_a_p + t * size + at_;
          scalar_t* d_b_row = d_b_p + t * size + at_;
          if (unit) {
            scan_row_backward<scalar_t, true>(a_row, a_.sk, g_row, g_.sk, previous, carry + at_,
                                              d_a_row, d_b_row, k1 - k0);
          } else {
            scan_row_backward<scalar_t, false>(a_row, a_.sk, g_row, g_.sk, previous, carry + at_,
                                               d_a_row, d_b_row, k1 - k0);
          }
        });
      }
    });
  });
  return {d_a, d_b, d_h0};
}

// -- minGRU / minLSTM: h_t = (1 - z_t) h_{t-1} + z_t g(v_t), z_t = sigma(k_t) -------------------

// One row of one step: the gates from k and v (strides sk, sv), h = keep * previous + z g(v).
template <typename T, bool Signed, bool Unit>
inline void gated_row(const T* __restrict__ k, int64_t sk, const T* __restrict__ v, int64_t sv,
                      const T* __restrict__ previous, T* __restrict__ h, int64_t n) {
  if (previous == nullptr) {  // step 0: h_{-1} = 0
    for (int64_t j = 0; j < n; ++j) {
      const Gates<T> g = gates_of<T, Signed>(k[Unit ? j : j * sk], v[Unit ? j : j * sv]);
      h[j] = g.z * g.candidate;
    }
    return;
  }
  for (int64_t j = 0; j < n; ++j) {
    const Gates<T> g = gates_of<T, Signed>(k[Unit ? j : j * sk], v[Unit ? j : j * sv]);
    h[j] = g.keep * previous[j] + g.z * g.candidate;
  }
}

// One row of one step backward: total = d_h + carry, then d_k = total dh/dk = total z (1 - z)
// (g(v) - c h_{t-1}) with c = 1 ([0, 1]) or 2 ([-1, 1]), d_v = total z g'(v), carry = keep *
// total. h_{t-1} - g(v) is taken as it stands, not from h_t - h_{t-1} = z (g(v) - h_{t-1}) where
// float32 would lose a small z to the difference of two large states.
template <typename T, bool Signed, bool Unit>
inline void gated_row_backward(const T* __restrict__ k, int64_t sk, const T* __restrict__ v,
                               int64_t sv, const T* __restrict__ d_h, int64_t sg,
                               const T* __restrict__ previous, T* __restrict__ carry,
                               T* __restrict__ d_k, int64_t sdk, T* __restrict__ d_v, int64_t sdv,
                               int64_t n) {
  const T c = Signed ? T(2) : T(1);
  if (previous == nullptr) {  // step 0: h_{-1} = 0
    for (int64_t j = 0; j < n; ++j) {
      const Gates<T> g = gates_of<T, Signed>(k[Unit ? j : j * sk], v[Unit ? j : j * sv]);
      const T total = d_h[Unit ? j : j * sg] + carry[j];
      d_k[Unit ? j : j * sdk] = total * g.z * (T(1) - g.z) * g.candidate;
      d_v[Unit ? j : j * sdv] = total * g.z * g.slope;
      carry[j] = g.keep * total;
    }
    return;
  }
  for (int64_t j = 0; j < n; ++j) {
    const Gates<T> g = gates_of<T, Signed>(k[Unit ? j : j * sk], v[Unit ? j : j * sv]);
    const T total = d_h[Unit ? j : j * sg] + carry[j];
    d_k[Unit ? j : j * sdk] = total * g.z * (T(1) - g.z) * (g.candidate - c * previous[j]);
    d_v[Unit ? j : j * sdv] = total * g.z * g.slope;
    carry[j] = g.keep * total;
  }
}

template <typename T, bool Signed, bool Unit>
void gated_forward_block(View<const T> k, View<const T> v, View<T> h, int64_t steps, int64_t cols,
                         bool time_inner, int64_t first, int64_t last) {
  for_each_step(first, last, cols, steps, time_inner, false,
                [&](int64_t t, int64_t m, int64_t k0, int64_t k1, int64_t) {
                  T* out = h.row(t, m) + k0;
                  gated_row<T, Signed, Unit>(k.row(t, m) + k0 * k.sk, k.sk, v.row(t, m) + k0 * v.sk,
                                             v.sk, t > 0 ? h.row(t - 1, m) + k0 : nullptr, out,
                                             k1 - k0);
                });
}

// How many steps ahead the batch-major backward prefetches its rows: 2-4 took a row's reverse
// time loop from 17.5 to 12.0-12.5 ms at T 400, B 64, H 128 on the AMD EPYC (one thread; the
// time-major walk, ascending within each step, needs none: 10.2 ms).
constexpr int64_t kAhead = 4;

// sums (2K) += the d_k and d_v of one row segment, still in L1 (the bias gradient)
template <typename T>
inline void add_row(const T* d_k, int64_t sdk, const T* d_v, int64_t sdv, double* sums,
                    int64_t cols, int64_t k0, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    sums[k0 + j] += d_k[j * sdk];
    sums[cols + k0 + j] += d_v[j * sdv];
  }
}

template <typename T, bool Signed, bool Unit>
void gated_backward_block(View<const T> k, View<const T> v, View<const T> d_h, View<const T> h,
                          View<T> d_k, View<T> d_v, T* carry, double* sums, int64_t steps,
                          int64_t cols, bool time_inner, int64_t first, int64_t last) {
  for_each_step(
      first, last, cols, steps, time_inner, true,
      [&](int64_t t, int64_t m, int64_t k0, int64_t k1, int64_t offset) {
        if (time_inner && t > kAhead) {  // the hardware prefetchers miss this descending walk
          for (int64_t j = k0; j < k1; j += 64 / int64_t(sizeof(T))) {
            __builtin_prefetch(k.row(t - kAhead, m) + j * k.sk);
            __builtin_prefetch(v.row(t - kAhead, m) + j * v.sk);
            __builtin_prefetch(d_h.row(t - kAhead, m) + j * d_h.sk);
            __builtin_prefetch(h.row(t - kAhead - 1, m) + j);
            __builtin_prefetch(d_k.row(t - kAhead, m) + j * d_k.sk, 1);
            __builtin_prefetch(d_v.row(t - kAhead, m) + j * d_v.sk, 1);
          }
        }
        gated_row_backward<T, Signed, Unit>(
            k.row(t, m) + k0 * k.sk, k.sk, v.row(t, m) + k0 * v.sk, v.sk,
            d_h.row(t, m) + k0 * d_h.sk, d_h.sk, t > 0 ? h.row(t - 1, m) + k0 : nullptr,
            carry + offset, d_k.row(t, m) + k0 * d_k.sk, d_k.sk, d_v.row(t, m) + k0 * d_v.sk,
            d_v.sk, k1 - k0);
        if (sums) {
          add_row(d_k.row(t, m) + k0 * d_k.sk, d_k.sk, d_v.row(t, m) + k0 * d_v.sk, d_v.sk, sums,
                  cols, k0, k1 - k0);
        }
      });
}

// Calls body(Signed, Unit) with the runtime flags as std::integral_constant types.
template <typename F>
void dispatch_flags(bool is_signed, bool unit, const F& body) {
  if (is_signed) {
    unit ? body(std::true_type{}, std::true_type{}) : body(std::true_type{}, std::false_type{});
  } else {
    unit ? body(std::false_type{}, std::true_type{}) : body(std::false_type{}, std::false_type{});
  }
}

// k, v (T, M, K), any strides: the update logit and the candidate pre-activation. `is_signed`:
// keep = 1 - 2z in [-1, 1] instead of 1 - z. Returns h (T, M, K) from h_{-1} = 0, laid out as k
// is: time major (contiguous), or batch major (a (T, M, K) view of contiguous (M, T, K)
// memory) when k is, so that each thread streams through its rows in memory order.
at::Tensor gated_scan_forward(const at::Tensor& k, const at::Tensor& v, bool is_signed) {
  const int64_t steps = k.size(0), rows = k.size(1), cols = k.size(2);
  const bool time_inner = batch_major(k);
  auto out = time_inner ? at::empty({rows, steps, cols}, k.options()).transpose(0, 1)
                        : at::empty({steps, rows, cols}, k.options());
  if (out.numel() == 0) return out;
  const bool unit = k.stride(2) == 1 && v.stride(2) == 1;
  AT_DISPATCH_FLOATING_TYPES(k.scalar_type(), "gated_scan_forward", [&] {
    const auto k_ = const_view_of<scalar_t>(k);
    const auto v_ = const_view_of<scalar_t>(v);
    const auto out_ = view_of<scalar_t>(out);
    for_each_block(rows * cols, [&](int64_t first, int64_t last) {
      dispatch_flags(is_signed, unit, [&](auto s, auto u) {
        gated_forward_block<scalar_t, decltype(s)::value, decltype(u)::value>(
            k_, v_, out_, steps, cols, time_inner, first, last);
      });
    });
  });
  return out;
}

// k, v, d_h and h (T, M, K), any strides (h with unit stride along K, as the forward returned
// it). Writes d_k and d_v, (T, M, K) views with any strides (two halves of one buffer, say, so
// that the input projection's backward is one GEMM). `sum_rows`: also returns the sums of d_k
// and d_v over T and M (2K, the gradient of a bias added to k and v), each thread adding its
// rows in double as they are written, then the threads' sums added in a fixed order; else an
// empty tensor.
at::Tensor gated_scan_backward(const at::Tensor& k, const at::Tensor& v, const at::Tensor& h,
                               const at::Tensor& d_h, at::Tensor& d_k, at::Tensor& d_v,
                               bool is_signed, bool sum_rows) {
  const int64_t steps = h.size(0), rows = h.size(1), cols = h.size(2);
  const int64_t threads = std::max<int64_t>(1, at::get_num_threads());
  auto sums = at::zeros({sum_rows ? threads : 0, 2 * cols}, h.options().dtype(at::kDouble));
  if (h.numel() == 0) return sum_rows ? sums.sum(0).to(h.scalar_type()) : at::Tensor();
  TORCH_CHECK(cols == 1 || h.stride(2) == 1, "gated_scan_backward: h needs unit stride along K");
  const bool time_inner = batch_major(k);
  const bool unit = k.stride(2) == 1 && v.stride(2) == 1 && d_h.stride(2) == 1 &&
                    d_k.stride(2) == 1 && d_v.stride(2) == 1;
  auto carry = at::zeros({rows * cols}, h.options());
  AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "gated_scan_backward", [&] {
    const auto k_ = const_view_of<scalar_t>(k);
    const auto v_ = const_view_of<scalar_t>(v);
    const auto g_ = const_view_of<scalar_t>(d_h);
    const auto h_ = const_view_of<scalar_t>(h);
    const auto d_k_ = view_of<scalar_t>(d_k);
    const auto d_v_ = view_of<scalar_t>(d_v);
    scalar_t* carry_p = carry.data_ptr<scalar_t>();
    double* sums_p = sum_rows ? sums.data_ptr<double>() : nullptr;
    for_each_block(rows * cols, [&](int64_t first, int64_t last) {
      double* mine = sums_p ? sums_p + at::get_thread_num() * 2 * cols : nullptr;
      dispatch_flags(is_signed, unit, [&](auto s, auto u) {
        gated_backward_block<scalar_t, decltype(s)::value, decltype(u)::value>(
            k_, v_, g_, h_, d_k_, d_v_, carry_p + first, mine, steps, cols, time_inner, first,
            last);
      });
    });
  });
  return sum_rows ? sums.sum(0).to(h.scalar_type()) : at::Tensor();
}

}  // namespace

void register_scans(pybind11::module_& m) {
  m.def("linear_scan_forward", &linear_scan_forward);
  m.def("linear_scan_backward", &linear_scan_backward);
  m.def("gated_scan_forward", &gated_scan_forward);
  m.def("gated_scan_backward", &gated_scan_backward);
}
