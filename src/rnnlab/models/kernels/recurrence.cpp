// Fused CPU recurrences for one GRU, Elman-RNN or LSTM layer direction, with hand-written
// backward.
//
// PyTorch's CPU GRU / RNN run ~10 small ops per time step, each recorded by autograd, and its
// float tanh / sigmoid are not vectorised. Here each step is one GEMM for the recurrent
// projection plus one pass over (B, H) for the gates, biases included; the backward is the
// mirror image, summing the bias gradients as it goes, and the recurrent weight gradient is a
// single GEMM over all steps. The batch is split into one block of rows per thread, each
// running its own time loop. The input projection x W_ih^T is left to the caller (one big
// GEMM, no bias).
//
// Layouts (contiguous unless said): time major, gates / gi (T, B, G*H) and out (T, B, H), so a
// step's rows lie together; d_out (B, T, H) with any batch / time strides; w_hh (G*H, H).
// Gate order is torch's: GRU r, z, n; h' = (1 - z) * n + z * h,
// n = tanh(x_n + b_in + r * (W_hn h + b_hn)); LSTM i, f, g, o; c' = f * c + i * g,
// h' = o * tanh(c').
#include <torch/extension.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

// Fortran BLAS, as torch's MKL exports it (LP64: 32-bit sizes); weak, so that a torch without
// it still loads this module (step_gemm then falls back to at::addmm).
extern "C" {
void sgemm_(const char*, const char*, const int*, const int*, const int*, const float*,
            const float*, const int*, const float*, const int*, const float*, float*,
            const int*) __attribute__((weak));
void dgemm_(const char*, const char*, const int*, const int*, const int*, const double*,
            const double*, const int*, const double*, const int*, const double*, double*,
            const int*) __attribute__((weak));
}

namespace {

// tanh as a 13/6-degree rational function (Eigen's generic_fast_tanh_float, a couple of ulp
// on [-9, 9], +-1 beyond): only mul, add, div and compares, so the loops vectorise.
inline float tanh_of(float x) {
  x = x < -9.f ? -9.f : (x > 9.f ? 9.f : x);
  const float x2 = x * x;
  float p = x2 * -2.76076847742355e-16f + 2.00018790482477e-13f;
  p = p * x2 + -8.60467152213735e-11f;
  p = p * x2 + 5.12229709037114e-08f;
  p = p * x2 + 1.48572235717979e-05f;
  p = p * x2 + 6.37261928875436e-04f;
  p = p * x2 + 4.89352455891786e-03f;
  p = p * x;
  float q = x2 * 1.19825839466702e-06f + 1.18534705686654e-04f;
  q = q * x2 + 2.26843463243900e-03f;
  q = q * x2 + 4.89352518554385e-03f;
  return p / q;
}
inline double tanh_of(double x) { return std::tanh(x); }

template <typename T>
inline T sigmoid_of(T x) {
  return T(0.5) + T(0.5) * tanh_of(T(0.5) * x);
}

// One row of one GRU step: x = x W_ih^T row (3H), overwritten with the gates r, z, n (saved
// for the backward where they were read); y = W_hh h row (3H); b_i / b_h = b_ih / b_hh (3H);
// h = the previous state. Writes the new state o (H) and y_n = W_hn h + b_hn (H), also saved.
template <typename T>
void gru_row_forward(T* __restrict__ x, const T* __restrict__ y, const T* __restrict__ b_i,
                     const T* __restrict__ b_h, const T* __restrict__ h, T* __restrict__ y_n,
                     T* __restrict__ o, int64_t hidden) {
  for (int64_t j = 0; j < hidden; ++j) {
    const T r = sigmoid_of((x[j] + b_i[j]) + (y[j] + b_h[j]));
    const T z = sigmoid_of((x[hidden + j] + b_i[hidden + j]) + (y[hidden + j] + b_h[hidden + j]));
    const T yn = y[2 * hidden + j] + b_h[2 * hidden + j];
    const T n = tanh_of((x[2 * hidden + j] + b_i[2 * hidden + j]) + r * yn);
    x[j] = r;
    x[hidden + j] = z;
    x[2 * hidden + j] = n;
    y_n[j] = yn;
    o[j] = n + z * (h[j] - n);
  }
}

// The same row backward: gates = r, z, n (3H), y_n as saved, h the previous state, grad =
// d_out + d_h = dL/dh' (from the output and later steps). Writes the gradients of the input
// (dx, 3H) and recurrent (dy, 3H) pre-activations, whose r and z parts are equal, the n part
// of dy apart (dy_n, H), the direct path z * grad over d_h, and adds the bias gradients to
// d_bias: d b_ih (3H), then the n part of d b_hh (H; its r, z parts are b_ih's).
template <typename T>
void gru_row_backward(const T* __restrict__ gates, const T* __restrict__ y_n,
                      const T* __restrict__ h, const T* __restrict__ d_out, T* __restrict__ d_h,
                      T* __restrict__ dx, T* __restrict__ dy, T* __restrict__ dy_n,
                      T* __restrict__ d_bias, int64_t hidden) {
  for (int64_t j = 0; j < hidden; ++j) {
    const T r = gates[j], z = gates[hidden + j], n = gates[2 * hidden + j];
    const T grad = d_out[j] + d_h[j];
    const T d_n = grad * (1 - z) * (1 - n * n);
    const T d_z = grad * (h[j] - n) * z * (1 - z);
    const T d_r = d_n * y_n[j] * r * (1 - r);
    dx[j] = d_r;
    dy[j] = d_r;
    dx[hidden + j] = d_z;
    dy[hidden + j] = d_z;
    dx[2 * hidden + j] = d_n;
    dy[2 * hidden + j] = d_n * r;
    dy_n[j] = d_n * r;
    d_h[j] = grad * z;  // the direct path; the step's GEMM adds W_hh's part
  }
  for (int64_t j = 0; j < 3 * hidden; ++j) d_bias[j] += dx[j];  // still in L1
  for (int64_t j = 0; j < hidden; ++j) d_bias[3 * hidden + j] += dy_n[j];
}

// One row of one LSTM step: x = x W_ih^T row (4H), overwritten with the gates i, f, g, o (the
// backward's saved state, written where it was read: no second buffer to stream through);
// y = W_hh h row (4H); bias = b_ih + b_hh; c = the previous cell state. Writes the new cell
// state cell (H) and hidden state o (H).
template <typename T>
void lstm_row_forward(T* __restrict__ x, const T* __restrict__ y, const T* __restrict__ bias,
                      const T* __restrict__ c, T* __restrict__ cell, T* __restrict__ o,
                      int64_t hidden) {
  for (int64_t j = 0; j < hidden; ++j) {
    const T in = sigmoid_of(x[j] + y[j] + bias[j]);
    const T forget = sigmoid_of(x[hidden + j] + y[hidden + j] + bias[hidden + j]);
    const T g = tanh_of(x[2 * hidden + j] + y[2 * hidden + j] + bias[2 * hidden + j]);
    const T out = sigmoid_of(x[3 * hidden + j] + y[3 * hidden + j] + bias[3 * hidden + j]);
    const T next = forget * c[j] + in * g;
    x[j] = in;
    x[hidden + j] = forget;
    x[2 * hidden + j] = g;
    x[3 * hidden + j] = out;
    cell[j] = next;
    o[j] = out * tanh_of(next);
  }
}

// The same row backward: gates = i, f, g, o (4H); cell / c = this step's and the previous cell
// state; d_h = dL/dh' from the output and later steps; d_c = dL/dc' from later steps (updated in
// place to dL/dc for the step before). Writes the gate gradients dg (4H), adds them to d_bias.
template <typename T>
void lstm_row_backward(const T* __restrict__ gates, const T* __restrict__ cell,
                       const T* __restrict__ c, const T* __restrict__ d_out,
                       const T* __restrict__ d_later, T* __restrict__ d_c, T* __restrict__ dg,
                       T* __restrict__ d_bias, int64_t hidden) {
  for (int64_t j = 0; j < hidden; ++j) {
    const T in = gates[j], forget = gates[hidden + j], g = gates[2 * hidden + j];
    const T out = gates[3 * hidden + j], tc = tanh_of(cell[j]);
    const T grad = d_out[j] + d_later[j];
    const T d_cell = d_c[j] + grad * out * (1 - tc * tc);
    const T d_i = d_cell * g * in * (1 - in), d_f = d_cell * c[j] * forget * (1 - forget);
    const T d_g = d_cell * in * (1 - g * g), d_o = grad * tc * out * (1 - out);
    dg[j] = d_i;
    dg[hidden + j] = d_f;
    dg[2 * hidden + j] = d_g;
    dg[3 * hidden + j] = d_o;
    d_c[j] = d_cell * forget;
  }
  for (int64_t j = 0; j < 4 * hidden; ++j) d_bias[j] += dg[j];  // dg is still in L1
}

// total += step, compensated (Kahan): a bias gradient sums B x T terms, and a plain running
// float32 sum of ~10^4 of them loses about 2 decimal digits against a pairwise one.
template <typename T>
void add_compensated(T* __restrict__ total, T* __restrict__ carry, const T* __restrict__ step,
                     int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    const T y = step[j] - carry[j];
    const T sum = total[j] + y;
    carry[j] = (sum - total[j]) - y;
    total[j] = sum;
  }
}

// One row of one Elman step: o = tanh(x + y + bias), x = x W_ih^T row, y = W_hh h row (H).
template <typename T>
void tanh_row(const T* __restrict__ x, const T* __restrict__ y, const T* __restrict__ bias,
              T* __restrict__ o, int64_t hidden) {
  for (int64_t j = 0; j < hidden; ++j) o[j] = tanh_of(x[j] + y[j] + bias[j]);
}

// The same row backward: dx = dL/d(pre-activation) (H), also added to d_bias.
template <typename T>
void tanh_row_backward(const T* __restrict__ o, const T* __restrict__ d_out,
                       const T* __restrict__ d_later, T* __restrict__ dx, T* __restrict__ d_bias,
                       int64_t hidden) {
  for (int64_t j = 0; j < hidden; ++j) {
    dx[j] = (d_out[j] + d_later[j]) * (1 - o[j] * o[j]);
    d_bias[j] += dx[j];
  }
}

// Rows of a batch are independent recurrences: split them into one block per thread, each
// running the whole time loop with single-threaded GEMMs, so no step waits on another thread.
// Worker threads start with autograd on; the kernels only ever touch plain buffers.
template <typename F>
void for_each_row_block(int64_t batch, const F& run) {
  const int64_t threads = std::max<int64_t>(1, at::get_num_threads());
  at::parallel_for(0, batch, (batch + threads - 1) / threads, [&](int64_t first, int64_t last) {
    at::NoGradGuard no_grad;
    run(first, last);
  });
}

// c (rows, n) = a (rows, k) @ b (k, n) + beta * c, row major with leading dimensions lda, ldb,
// ldc: one step's small GEMM. It goes straight to the BLAS torch links (MKL's sgemm_ /
// dgemm_, single threaded inside a row block), without the dispatcher and the tensor views
// that an at::mm costs at every step; where torch exports no such BLAS symbol (they are weak
// here, so the module still loads), it falls back to at::addmm on views of the same memory.
bool direct_blas = true;  // false: always the at::addmm path (tests compare the two)

template <typename T>
void step_gemm(int64_t rows, int64_t n, int64_t k, const T* a, int64_t lda, const T* b,
               int64_t ldb, T beta, T* c, int64_t ldc) {
  const char no = 'N';
  const int m_ = n, n_ = rows, k_ = k, lda_ = ldb, ldb_ = lda, ldc_ = ldc;  // c^T = b^T a^T
  const T one = 1;
  if constexpr (std::is_same_v<T, float>) {
    if (direct_blas && sgemm_ != nullptr) {
      return sgemm_(&no, &no, &m_, &n_, &k_, &one, b, &lda_, a, &ldb_, &beta, c, &ldc_);
    }
  } else if constexpr (std::is_same_v<T, double>) {
    if (direct_blas && dgemm_ != nullptr) {
      return dgemm_(&no, &no, &m_, &n_, &k_, &one, b, &lda_, a, &ldb_, &beta, c, &ldc_);
    }
  }
  const auto options = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  const auto a_ = at::from_blob(const_cast<T*>(a), {rows, k}, {lda, 1}, options);
  const auto b_ = at::from_blob(const_cast<T*>(b), {k, n}, {ldb, 1}, options);
  auto c_ = at::from_blob(c, {rows, n}, {ldc, 1}, options);
  c_.addmm_(a_, b_, beta, 1);  // beta 0: c is not read
}

// The recurrent weight gradient (G*H, H) = sum over t of d_gh[t]^T out[t - 1]: d_gh (T, B, G*H)
// and out (T, B, H) time major, so the states steps 1..T-1 read are one block (step 0's was 0).
at::Tensor recurrent_weight_grad(const at::Tensor& d_gh, const at::Tensor& out) {
  const int64_t steps = out.size(0), batch = out.size(1), hidden = out.size(2);
  const int64_t gates = d_gh.size(2);
  if (steps == 1) return at::zeros({gates, hidden}, out.options());
  const auto previous = out.narrow(0, 0, steps - 1).view({(steps - 1) * batch, hidden});
  const auto later =  // (T-1)*B rows; a column slice keeps its row stride
      d_gh.narrow(0, 1, steps - 1).flatten(0, 1);
  return at::mm(previous.t(), later).t();  // (G*H, H); MKL is faster this way round
}

// GRU, gate order r, z, n. gates (T, B, 3H), time major, holds x W_ih^T on entry and r, z, n
// on return. Returns out (T, B, H), time major, and y_n = W_hn h + b_hn (T, B, H).
std::vector<at::Tensor> gru_forward(const at::Tensor& gates, const at::Tensor& w_hh,
                                    const at::Tensor& b_ih, const at::Tensor& b_hh) {
  const int64_t steps = gates.size(0), batch = gates.size(1), hidden = w_hh.size(1);
  const int64_t g3 = 3 * hidden;
  auto out = at::empty({steps, batch, hidden}, gates.options());
  auto y_n = at::empty({steps, batch, hidden}, gates.options());
  const auto w_t = w_hh.t().contiguous();  // (H, 3H): MKL runs the step GEMM faster this way
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "gru_forward", [&] {
    for_each_row_block(batch, [&](int64_t first, int64_t last) {
      const int64_t rows = last - first;
      auto gh = at::zeros({rows, g3}, gates.options());  // W_hh h of these rows (0 at t=0)
      auto zeros = at::zeros({hidden}, gates.options());
      scalar_t* gates_p = gates.data_ptr<scalar_t>();
      scalar_t* gh_p = gh.data_ptr<scalar_t>();
      const scalar_t* w_t_p = w_t.data_ptr<scalar_t>();
      const scalar_t* b_i = b_ih.data_ptr<scalar_t>();
      const scalar_t* b_h = b_hh.data_ptr<scalar_t>();
      const scalar_t* zeros_p = zeros.data_ptr<scalar_t>();
      scalar_t* y_n_p = y_n.data_ptr<scalar_t>();
      scalar_t* out_p = out.data_ptr<scalar_t>();
      for (int64_t t = 0; t < steps; ++t) {
        if (t > 0) {  // gh (rows, 3H) = h (rows, H) @ W_hh^T
          step_gemm<scalar_t>(rows, g3, hidden, out_p + ((t - 1) * batch + first) * hidden,
                              hidden, w_t_p, g3, 0, gh_p, g3);
        }
        for (int64_t b = first; b < last; ++b) {
          const int64_t row = t * batch + b;
          const scalar_t* h = t == 0 ? zeros_p : out_p + (row - batch) * hidden;
          gru_row_forward(gates_p + row * g3, gh_p + (b - first) * g3, b_i, b_h, h,
                          y_n_p + row * hidden, out_p + row * hidden, hidden);
        }
      }
    });
  });
  return {out, y_n};
}

// d_out (B, T, H) with unit stride along H (any batch / time strides). Returns d_gi (T, B, 3H),
// time major (the gradient of x W_ih^T), d_w_hh (3H, H), d_b_ih (3H) and d_b_hh (3H).
// The gradient of W_hh h + b_hh equals d_gi but in its n part (d_gh_n, kept apart): a step's
// full rows are built in a small buffer for its GEMM, not written out for all T steps.
std::vector<at::Tensor> gru_backward(const at::Tensor& d_out, const at::Tensor& w_hh,
                                     const at::Tensor& out, const at::Tensor& gates,
                                     const at::Tensor& y_n) {
  const int64_t steps = out.size(0), batch = out.size(1), hidden = out.size(2);
  const int64_t g3 = 3 * hidden, g4 = 4 * hidden;
  const int64_t d_out_b = d_out.stride(0), d_out_t = d_out.stride(1);
  auto d_gi = at::empty({steps, batch, g3}, out.options());
  auto d_gh_n = at::empty({steps, batch, hidden}, out.options());
  auto d_bias = at::zeros({batch, g4}, out.options());  // row `first` holds its block's sums
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "gru_backward", [&] {
    for_each_row_block(batch, [&](int64_t first, int64_t last) {
      const int64_t rows = last - first;
      auto d_h = at::zeros({rows, hidden}, out.options());       // dL/dh_t from later steps
      auto d_gh = at::empty({rows, g3}, out.options());  // this step's d(W_hh h + b_hh)
      auto zeros = at::zeros({hidden}, out.options());
      auto step_bias = at::empty({g4}, out.options());  // this step's rows, summed
      auto carry = at::zeros({g4}, out.options());      // the compensated sum's lost low bits
      scalar_t* step_bias_p = step_bias.data_ptr<scalar_t>();
      scalar_t* carry_p = carry.data_ptr<scalar_t>();
      const scalar_t* out_p = out.data_ptr<scalar_t>();
      const scalar_t* gates_p = gates.data_ptr<scalar_t>();
      const scalar_t* y_n_p = y_n.data_ptr<scalar_t>();
      const scalar_t* d_out_p = d_out.data_ptr<scalar_t>();
      scalar_t* d_h_p = d_h.data_ptr<scalar_t>();
      const scalar_t* w_p = w_hh.data_ptr<scalar_t>();
      const scalar_t* zeros_p = zeros.data_ptr<scalar_t>();
      scalar_t* d_gi_p = d_gi.data_ptr<scalar_t>();
      scalar_t* d_gh_p = d_gh.data_ptr<scalar_t>();
      scalar_t* d_gh_n_p = d_gh_n.data_ptr<scalar_t>();
      scalar_t* d_bias_p = d_bias.data_ptr<scalar_t>() + first * g4;
      for (int64_t t = steps - 1; t >= 0; --t) {
        std::fill(step_bias_p, step_bias_p + g4, scalar_t(0));
        for (int64_t b = first; b < last; ++b) {
          const int64_t row = t * batch + b;
          const scalar_t* h = t == 0 ? zeros_p : out_p + (row - batch) * hidden;
          gru_row_backward(gates_p + row * g3, y_n_p + row * hidden, h,
                           d_out_p + b * d_out_b + t * d_out_t, d_h_p + (b - first) * hidden,
                           d_gi_p + row * g3, d_gh_p + (b - first) * g3, d_gh_n_p + row * hidden,
                           step_bias_p, hidden);
        }
        add_compensated(d_bias_p, carry_p, step_bias_p, g4);
        if (t > 0) {  // d_h (rows, H) += d_gh (rows, 3H) @ W_hh
          step_gemm<scalar_t>(rows, hidden, g3, d_gh_p, g3, w_p, hidden, 1, d_h_p, hidden);
        }
      }
    });
  });
  // d_w_hh: the r, z rows from d_gi's r, z columns, the n rows from d_gh_n
  const auto d_w_hh = at::cat({recurrent_weight_grad(d_gi.narrow(2, 0, 2 * hidden), out),
                               recurrent_weight_grad(d_gh_n, out)});
  auto sums = d_bias.sum(0);  // d_r, d_z, d_n, d_n * r
  auto d_b_hh = at::cat({sums.narrow(0, 0, 2 * hidden), sums.narrow(0, g3, hidden)});
  return {d_gi, d_w_hh, sums.narrow(0, 0, g3), d_b_hh};
}

// Elman RNN, tanh. gi (T, B, H), time major, holds x W_ih^T; bias = b_ih + b_hh (H).
// Returns out (T, B, H), time major.
at::Tensor rnn_forward(const at::Tensor& gi, const at::Tensor& w_hh, const at::Tensor& bias) {
  const int64_t steps = gi.size(0), batch = gi.size(1), hidden = w_hh.size(1);
  auto out = at::empty({steps, batch, hidden}, gi.options());
  const auto w_t = w_hh.t().contiguous();  // (H, H)
  AT_DISPATCH_FLOATING_TYPES(gi.scalar_type(), "rnn_forward", [&] {
    for_each_row_block(batch, [&](int64_t first, int64_t last) {
      const int64_t rows = last - first;
      auto gh = at::zeros({rows, hidden}, gi.options());  // W_hh h of these rows (0 at t=0)
      const scalar_t* gi_p = gi.data_ptr<scalar_t>();
      scalar_t* gh_p = gh.data_ptr<scalar_t>();
      const scalar_t* w_t_p = w_t.data_ptr<scalar_t>();
      const scalar_t* bias_p = bias.data_ptr<scalar_t>();
      scalar_t* out_p = out.data_ptr<scalar_t>();
      for (int64_t t = 0; t < steps; ++t) {
        if (t > 0) {  // gh (rows, H) = h (rows, H) @ W_hh^T
          step_gemm<scalar_t>(rows, hidden, hidden, out_p + ((t - 1) * batch + first) * hidden,
                              hidden, w_t_p, hidden, 0, gh_p, hidden);
        }
        for (int64_t b = first; b < last; ++b) {
          const int64_t row = (t * batch + b) * hidden;
          tanh_row(gi_p + row, gh_p + (b - first) * hidden, bias_p, out_p + row, hidden);
        }
      }
    });
  });
  return out;
}

// d_out (B, T, H) with unit stride along H; out (T, B, H) as rnn_forward returned it. Returns
// d_gi (T, B, H), time major, d_w_hh (H, H) and d_bias (H).
std::vector<at::Tensor> rnn_backward(const at::Tensor& d_out, const at::Tensor& w_hh,
                                     const at::Tensor& out) {
  const int64_t steps = out.size(0), batch = out.size(1), hidden = out.size(2);
  const int64_t d_out_b = d_out.stride(0), d_out_t = d_out.stride(1);
  auto d_gi = at::empty({steps, batch, hidden}, out.options());
  auto d_bias = at::zeros({batch, hidden}, out.options());  // row `first` holds its block's sum
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "rnn_backward", [&] {
    for_each_row_block(batch, [&](int64_t first, int64_t last) {
      const int64_t rows = last - first;
      auto d_h = at::zeros({rows, hidden}, out.options());  // dL/dh_t from later steps
      auto step_bias = at::empty({hidden}, out.options());  // this step's rows, summed
      auto carry = at::zeros({hidden}, out.options());      // the compensated sum's lost low bits
      scalar_t* step_bias_p = step_bias.data_ptr<scalar_t>();
      scalar_t* carry_p = carry.data_ptr<scalar_t>();
      const scalar_t* out_p = out.data_ptr<scalar_t>();
      const scalar_t* d_out_p = d_out.data_ptr<scalar_t>();
      scalar_t* d_h_p = d_h.data_ptr<scalar_t>();
      const scalar_t* w_p = w_hh.data_ptr<scalar_t>();
      scalar_t* d_gi_p = d_gi.data_ptr<scalar_t>();
      scalar_t* d_bias_p = d_bias.data_ptr<scalar_t>() + first * hidden;
      for (int64_t t = steps - 1; t >= 0; --t) {
        std::fill(step_bias_p, step_bias_p + hidden, scalar_t(0));
        for (int64_t b = first; b < last; ++b) {
          const int64_t row = (t * batch + b) * hidden;
          tanh_row_backward(out_p + row, d_out_p + b * d_out_b + t * d_out_t,
                            d_h_p + (b - first) * hidden, d_gi_p + row, step_bias_p, hidden);
        }
        add_compensated(d_bias_p, carry_p, step_bias_p, hidden);
        if (t > 0) {  // d_h (rows, H) = d_gi (rows, G*H) @ W_hh
          step_gemm<scalar_t>(rows, hidden, hidden, d_gi_p + (t * batch + first) * hidden,
                              hidden, w_p, hidden, 0, d_h_p, hidden);
        }
      }
    });
  });
  return {d_gi, recurrent_weight_grad(d_gi, out), d_bias.sum(0)};
}

// LSTM, gate order i, f, g, o. gates (T, B, 4H), time major, holds x W_ih^T on entry (a step's
// rows then lie together) and the gates i, f, g, o on return; bias = b_ih + b_hh (4H).
// Returns out (T, B, H), time major, and the cell states (T, B, H).
std::vector<at::Tensor> lstm_forward(const at::Tensor& gates, const at::Tensor& w_hh,
                                     const at::Tensor& bias) {
  const int64_t steps = gates.size(0), batch = gates.size(1), hidden = w_hh.size(1);
  const int64_t g4 = 4 * hidden;
  auto out = at::empty({steps, batch, hidden}, gates.options());
  auto cell = at::empty({steps, batch, hidden}, gates.options());
  const auto w_t = w_hh.t().contiguous();  // (H, 4H): MKL runs the step GEMM faster this way
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "lstm_forward", [&] {
    for_each_row_block(batch, [&](int64_t first, int64_t last) {
      const int64_t rows = last - first;
      auto gh = at::zeros({rows, g4}, gates.options());  // W_hh h of these rows (0 at t=0)
      auto zeros = at::zeros({hidden}, gates.options());
      scalar_t* gates_p = gates.data_ptr<scalar_t>();
      scalar_t* gh_p = gh.data_ptr<scalar_t>();
      const scalar_t* w_t_p = w_t.data_ptr<scalar_t>();
      const scalar_t* bias_p = bias.data_ptr<scalar_t>();
      const scalar_t* zeros_p = zeros.data_ptr<scalar_t>();
      scalar_t* cell_p = cell.data_ptr<scalar_t>();
      scalar_t* out_p = out.data_ptr<scalar_t>();
      for (int64_t t = 0; t < steps; ++t) {
        if (t > 0) {  // gh (rows, 4H) = h (rows, H) @ W_hh^T
          step_gemm<scalar_t>(rows, g4, hidden, out_p + ((t - 1) * batch + first) * hidden,
                              hidden, w_t_p, g4, 0, gh_p, g4);
        }
        for (int64_t b = first; b < last; ++b) {
          const int64_t row = t * batch + b;
          const scalar_t* c = t == 0 ? zeros_p : cell_p + (row - batch) * hidden;
          lstm_row_forward(gates_p + row * g4, gh_p + (b - first) * g4, bias_p, c,
                           cell_p + row * hidden, out_p + row * hidden, hidden);
        }
      }
    });
  });
  return {out, cell};
}

// d_out (B, T, H) with unit stride along H; out (T, B, H) as lstm_forward returned it. Returns
// d_gi (T, B, 4H), time major (the gradient of x W_ih^T and of W_hh h), d_w_hh (4H, H) and
// d_bias (4H).
std::vector<at::Tensor> lstm_backward(const at::Tensor& d_out, const at::Tensor& w_hh,
                                      const at::Tensor& out, const at::Tensor& gates,
                                      const at::Tensor& cell) {
  const int64_t steps = out.size(0), batch = out.size(1), hidden = out.size(2);
  const int64_t g4 = 4 * hidden;
  const int64_t d_out_b = d_out.stride(0), d_out_t = d_out.stride(1);
  auto d_gi = at::empty({steps, batch, g4}, out.options());
  auto d_bias = at::zeros({batch, g4}, out.options());  // row `first` holds its block's sum
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "lstm_backward", [&] {
    for_each_row_block(batch, [&](int64_t first, int64_t last) {
      const int64_t rows = last - first;
      auto d_h = at::zeros({rows, hidden}, out.options());  // dL/dh_t from later steps
      auto d_c = at::zeros({rows, hidden}, out.options());  // dL/dc_t from later steps
      auto zeros = at::zeros({hidden}, out.options());
      auto step_bias = at::empty({g4}, out.options());  // this step's rows, summed
      auto carry = at::zeros({g4}, out.options());      // the compensated sum's lost low bits
      scalar_t* step_bias_p = step_bias.data_ptr<scalar_t>();
      scalar_t* carry_p = carry.data_ptr<scalar_t>();
      const scalar_t* gates_p = gates.data_ptr<scalar_t>();
      const scalar_t* cell_p = cell.data_ptr<scalar_t>();
      const scalar_t* d_out_p = d_out.data_ptr<scalar_t>();
      scalar_t* d_h_p = d_h.data_ptr<scalar_t>();
      const scalar_t* w_p = w_hh.data_ptr<scalar_t>();
      const scalar_t* zeros_p = zeros.data_ptr<scalar_t>();
      scalar_t* d_c_p = d_c.data_ptr<scalar_t>();
      scalar_t* d_gi_p = d_gi.data_ptr<scalar_t>();
      scalar_t* d_bias_p = d_bias.data_ptr<scalar_t>() + first * g4;
      for (int64_t t = steps - 1; t >= 0; --t) {
        std::fill(step_bias_p, step_bias_p + g4, scalar_t(0));
        for (int64_t b = first; b < last; ++b) {
          const int64_t row = t * batch + b;
          const scalar_t* c = t == 0 ? zeros_p : cell_p + (row - batch) * hidden;
          lstm_row_backward(gates_p + row * g4, cell_p + row * hidden, c,
                            d_out_p + b * d_out_b + t * d_out_t, d_h_p + (b - first) * hidden,
                            d_c_p + (b - first) * hidden, d_gi_p + row * g4, step_bias_p, hidden);
        }
        add_compensated(d_bias_p, carry_p, step_bias_p, g4);
        if (t > 0) {  // d_h (rows, H) = d_gi (rows, G*H) @ W_hh
          step_gemm<scalar_t>(rows, hidden, g4, d_gi_p + (t * batch + first) * g4,
                              g4, w_p, hidden, 0, d_h_p, hidden);
        }
      }
    });
  });
  return {d_gi, recurrent_weight_grad(d_gi, out), d_bias.sum(0)};
}

}  // namespace

void register_scans(pybind11::module_& m);  // scan.cpp: the linear and gated scans

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("gru_forward", &gru_forward);
  m.def("gru_backward", &gru_backward);
  m.def("rnn_forward", &rnn_forward);
  m.def("rnn_backward", &rnn_backward);
  m.def("lstm_forward", &lstm_forward);
  m.def("lstm_backward", &lstm_backward);
  m.def("set_direct_blas", [](bool on) { direct_blas = on; });
  register_scans(m);
}
