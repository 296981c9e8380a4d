// float32 Conv2D through oneDNN 2.6 convolution primitives, and its mixed-precision variant
// (onednn_conv.h). Activations stay NHWC in the caller's buffers (format_tag::nhwc over logical
// NCHW dims); weights are Keras HWIO (format_tag::hwio over logical OIHW dims) on the caller's
// side. Each primitive is created with format_tag::any weights, the user<->chosen weight reorder
// running per call (weights reordered into an input layout are kept while their version stamp,
// Conv2DParams::weights_version, is unchanged, so inference does not reorder every call and a
// training step's forward and backward-data share one reorder where their layouts agree).
// Primitives are created once per shape and cached (onednn_engine.h).
//
// Not here: which shapes come here (kernels/dispatch.cpp), float64 (oneDNN 2.6 has none).
#include "kernels/cpu/onednn_conv.h"

#include <array>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kernels/cpu/onednn_engine.h"

namespace reskit::kernels::onednn {

namespace {

Scratch& weight_scratch() {
  thread_local Scratch s;
  return s;
}

// The shapes of one convolution as oneDNN sees them. padding_r is derived from the output size (the
// reference reads only pad_top/left and P, Q), so oneDNN's size rule always holds.
// The *_bf descriptors are the bfloat16 operands of the mixed-precision primitives.
struct ConvShape {
  memory::desc src, dst, user_weights, any_weights, bias;
  memory::desc src_bf, dst_bf, any_weights_bf;
  memory::dims strides, padding_l, padding_r;
};
ConvShape conv_shape(const Conv2DParams& p) {
  ConvShape s;
  s.src = memory::desc({p.n, p.c, p.h, p.w}, f32, tag::nhwc);
  s.dst = memory::desc({p.n, p.k, p.p, p.q}, f32, tag::nhwc);
  s.user_weights = memory::desc({p.k, p.c, p.r, p.s}, f32, tag::hwio);
  s.any_weights = memory::desc({p.k, p.c, p.r, p.s}, f32, tag::any);
  s.src_bf = memory::desc({p.n, p.c, p.h, p.w}, bf16, tag::nhwc);
  s.dst_bf = memory::desc({p.n, p.k, p.p, p.q}, bf16, tag::nhwc);
  s.any_weights_bf = memory::desc({p.k, p.c, p.r, p.s}, bf16, tag::any);
  s.bias = memory::desc({p.k}, f32, tag::x);
  s.strides = {p.stride_h, p.stride_w};
  s.padding_l = {p.pad_top, p.pad_left};
  s.padding_r = {(p.p - 1) * p.stride_h + p.r - p.h - p.pad_top,
                 (p.q - 1) * p.stride_w + p.s - p.w - p.pad_left};
  return s;
}

// Mixed precision (in_bf16): bfloat16 source and weights, float32 destination and bias, or a
// bfloat16 destination (out_bf16: Conv2DParams::y_bf16; oneDNN rounds the float32 sums). residual:
// a tensor of dst's layout added (a binary post-op, its memory at DNNL_ARG_SRC_1 of post-op 0);
// relu: then max(0, ·) as an eltwise post-op.
// prefer_jit: the direct jit:avx512_core implementation where oneDNN has it (prefer_direct_jit).
dnnl::convolution_forward::primitive_desc conv_forward_pd(const ConvShape& s, bool with_bias,
                                                          bool in_bf16 = false, bool relu = false,
                                                          bool prefer_jit = false, bool residual = false,
                                                          bool out_bf16 = false) {
  const auto& src = in_bf16 ? s.src_bf : s.src;
  const auto& weights = in_bf16 ? s.any_weights_bf : s.any_weights;
  const auto& dst = out_bf16 ? s.dst_bf : s.dst;
  const auto desc = with_bias
                        ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training,
                                                          dnnl::algorithm::convolution_direct, src, weights,
                                                          s.bias, dst, s.strides, s.padding_l, s.padding_r)
                        : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training,
                                                          dnnl::algorithm::convolution_direct, src, weights,
                                                          dst, s.strides, s.padding_l, s.padding_r);
  const dnnl::primitive_attr attr = forward_epilogue(s.dst, residual, relu);
  // oneDNN 2.6's iterator keeps a pointer to `desc`: walk the implementations while it lives.
  dnnl::convolution_forward::primitive_desc pd(desc, attr, engine());
  if (prefer_jit) {
    const dnnl::convolution_forward::primitive_desc first = pd;
    const char* direct = in_bf16 ? "jit_bf16:avx512_core_bf16" : "jit:avx512_core";
    bool found = std::strcmp(pd.impl_info_str(), direct) == 0;
    while (!found && pd.next_impl()) found = std::strcmp(pd.impl_info_str(), direct) == 0;
    if (!found) return first;
  }
  return pd;
}

// One key per pair of weight layouts (the user's, the primitive's): the primitives that take the
// same weights in the same layout share one kept copy of them (kept_weights), so a training step's
// forward and backward-data reorder them once. Interned when a primitive is made, never per call.
const void* layout_key(const memory::desc& user, const memory::desc& chosen) {
  static std::mutex m;
  static std::vector<std::unique_ptr<std::pair<memory::desc, memory::desc>>> keys;
  std::lock_guard lock(m);
  for (const auto& k : keys) {
    if (k->first == user && k->second == chosen) return k.get();
  }
  keys.push_back(std::make_unique<std::pair<memory::desc, memory::desc>>(user, chosen));
  return keys.back().get();
}

// The weights in the primitive's layout: the caller's buffer itself when the layouts agree, else a
// per-thread scratch buffer (filled by `reorder` from the user's weights, or reordered into them)
// or, for an input with a version, the copy kept under `kept_key` (prepared_weights).
struct Weights {
  memory::desc user, chosen;
  std::optional<dnnl::reorder> to_chosen, to_user;
  const void* kept_key = nullptr;
};
Weights weights_for(const ConvShape& s, const memory::desc& chosen, bool to_chosen) {
  Weights w{s.user_weights, chosen, std::nullopt, std::nullopt};
  if (chosen != s.user_weights) {
    if (to_chosen) {
      w.to_chosen = dnnl::reorder(dnnl::reorder::primitive_desc(engine(), s.user_weights, engine(), chosen));
      w.kept_key = layout_key(s.user_weights, chosen);
    } else {
      w.to_user = dnnl::reorder(dnnl::reorder::primitive_desc(engine(), chosen, engine(), s.user_weights));
    }
  }
  return w;
}
memory chosen_memory(const Weights& w, float* user) {
  if (!w.to_chosen && !w.to_user) return memory(w.chosen, engine(), user);
  return memory(w.chosen, engine(), weight_scratch().get(w.chosen.get_size()));
}

// Runs a backward-weights primitive on src and diff_dst: dw in the caller's HWIO (through the
// primitive's layout where it differs), db where given (bias: its descriptor). Does not wait.
void run_backward_weights(const dnnl::convolution_backward_weights& prim, const Weights& wt,
                          const memory::desc& bias, const memory& src, const memory& diff_dst, float* dw,
                          float* db) {
  auto& st = stream();
  memory prim_dw = chosen_memory(wt, dw);
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_DIFF_WEIGHTS, prim_dw}};
  if (db != nullptr) args.emplace(DNNL_ARG_DIFF_BIAS, memory(bias, engine(), db));
  prim.execute(st, args);
  if (wt.to_user) {
    memory user_dw(wt.user, engine(), dw);
    wt.to_user->execute(st, prim_dw, user_dw);
  }
}

struct ConvForward {
  dnnl::convolution_forward prim;
  ConvShape shape;
  Weights weights;
};
struct ConvBackwardData {
  dnnl::convolution_backward_data prim;
  ConvShape shape;
  Weights weights;
};
struct ConvBackwardWeights {
  dnnl::convolution_backward_weights prim;
  ConvShape shape;
  Weights weights;
};
// The same, for the mixed-precision primitives (their own caches; OutBf16: bfloat16 results,
// Conv2DParams::y_bf16 or dx_bf16).
template <bool OutBf16>
struct ConvForwardBf16 : ConvForward {};
// Forward primitives with the implementation forced (conv_forward_impl; their own caches).
struct ConvForwardFirst : ConvForward {};
struct ConvForwardJit : ConvForward {};
template <bool OutBf16>
struct ConvForwardBf16First : ConvForward {};
template <bool OutBf16>
struct ConvForwardBf16Jit : ConvForward {};
template <bool OutBf16>
struct ConvBackwardDataBf16 : ConvBackwardData {};
struct ConvBackwardWeightsBf16 : ConvBackwardWeights {};

}  // namespace

// oneDNN 2.6 offers its brgconv kernels first for a float32 NHWC forward convolution, but its
// direct jit:avx512_core kernel is faster for 3×3 kernels over few input channels or on tiny
// images. Measured here (Zen 5, one thread, each implementation timed on every convolution shape
// of ResNet-20 at batch 128 and ResNet-50 at batch 32): ResNet-20's 28×28×16 3×3 2.34 ms with
// brgconv against 1.94 ms, its 1-channel stem 0.38 against 0.18 ms, ResNet-50's 2×2×512 3×3
// 4.0 against 2.3 ms; elsewhere brgconv was as fast or faster. On an Intel Xeon (family 6 model
// 207, one thread) ResNet-20's 14×14×32 3×3 ran 3.1-4.0 ms with brgconv against 2.5-2.7 ms direct
// (the fastest of 12 training steps, bench/onednn_step_times.py, three runs; `bench_kernels
// --rules` 0.86-0.96): on Intel up to 32 input channels take the direct kernel; on Zen 5 that
// shape was among the "elsewhere" above, so other CPUs keep 16 until measured. A fixed rule of the
// shape and the CPU's vendor, never a timing, so a run gives the same bits every time.
bool prefer_direct_jit(const Conv2DParams& p) {
  if (p.r * p.s == 1) return false;
  const int direct_channels = cpu_is_intel() ? 32 : 16;
  return p.c <= direct_channels || p.p * p.q <= 4;
}

// The same choice in bfloat16 (mixed precision's forward): oneDNN 2.6's direct jit_bf16 kernel is
// faster than its brgconv over few input channels. Measured on an AMD EPYC of family 25 (Zen 4),
// one thread, `bench_kernels --rules 5 jit_bf16` twice: ResNet-20's 28x28x16 3x3 1.96 against
// 2.28 ms, its stems 1.54x and 1.32-1.37x, the strided 16->32 1.14-1.18x, ResNet-50's conv1
// 1.04x; at 32 channels and more the direct kernel was 2-16% faster or slower (below the 15% a
// rule needs), so those keep brgconv. With AMX brgconv runs the AMX kernels: kept there (not
// measured: no such machine here). Intel CPUs without AMX run mixed precision on float32 kernels
// (dispatch.cpp) and never come here.
bool prefer_direct_jit_bf16(const Conv2DParams& p) { return p.r * p.s > 1 && p.c <= 16 && !has_amx(); }

namespace {

// The primitives of one convolution, or nothing when oneDNN has only its reference for it.
// in_bf16: bfloat16 activation operands (x, dy) and weights; results stay float32.
// prefer_jit: as forced by conv_forward_impl, else by the rule.
// With a residual (Conv2DParams::residual), also nothing unless the implementation is the one the
// convolution runs without it: oneDNN 2.6's brgconv takes no binary post-op, and the direct kernel
// it then offers is slower where the rule picked brgconv (ResNet-20's 14×14×32 and 7×7×64 3×3
// layers); the dispatcher then adds the residual in a pass of its own.
// out_bf16: bfloat16 results (Conv2DParams::y_bf16).
std::optional<ConvForward> make_forward(const Conv2DParams& p, bool with_bias, bool in_bf16,
                                        std::optional<bool> prefer_jit = std::nullopt,
                                        bool out_bf16 = false) {
  ConvShape s = conv_shape(p);
  const bool jit = prefer_jit ? *prefer_jit : in_bf16 ? prefer_direct_jit_bf16(p) : prefer_direct_jit(p);
  auto pd = conv_forward_pd(s, with_bias, in_bf16, p.relu, jit, p.residual != nullptr, out_bf16);
  if (is_reference_impl(pd)) return std::nullopt;
  if (p.residual != nullptr &&
      (!adds_residual_correctly(pd) ||
       std::strcmp(pd.impl_info_str(), conv_forward_pd(s, with_bias, in_bf16, p.relu, jit).impl_info_str()) !=
           0)) {
    return std::nullopt;
  }
  Weights wt = weights_for(s, pd.weights_desc(), true);
  return ConvForward{dnnl::convolution_forward(pd), std::move(s), std::move(wt)};
}

// out_bf16: dx in bfloat16 (Conv2DParams::dx_bf16).
std::optional<ConvBackwardData> make_backward_data(const Conv2DParams& p, bool in_bf16,
                                                   bool out_bf16 = false) {
  ConvShape s = conv_shape(p);
  const auto hint = conv_forward_pd(s, false, in_bf16);
  const dnnl::convolution_backward_data::desc desc(
      dnnl::algorithm::convolution_direct, out_bf16 ? s.src_bf : s.src,
      in_bf16 ? s.any_weights_bf : s.any_weights, in_bf16 ? s.dst_bf : s.dst, s.strides, s.padding_l,
      s.padding_r);
  const dnnl::convolution_backward_data::primitive_desc pd(desc, engine(), hint);
  if (is_reference_impl(pd)) return std::nullopt;
  Weights wt = weights_for(s, pd.weights_desc(), true);
  return ConvBackwardData{dnnl::convolution_backward_data(pd), std::move(s), std::move(wt)};
}

std::optional<ConvBackwardWeights> make_backward_weights(const Conv2DParams& p, bool with_bias,
                                                         bool in_bf16) {
  ConvShape s = conv_shape(p);
  const auto hint = conv_forward_pd(s, with_bias, in_bf16);
  const auto& src = in_bf16 ? s.src_bf : s.src;
  const auto& dst = in_bf16 ? s.dst_bf : s.dst;
  const auto desc =
      with_bias
          ? dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, src, s.any_weights,
                                                     s.bias, dst, s.strides, s.padding_l, s.padding_r)
          : dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, src, s.any_weights,
                                                     dst, s.strides, s.padding_l, s.padding_r);
  const dnnl::convolution_backward_weights::primitive_desc pd(desc, engine(), hint);
  if (is_reference_impl(pd)) return std::nullopt;
  Weights wt = weights_for(s, pd.diff_weights_desc(), false);
  return ConvBackwardWeights{dnnl::convolution_backward_weights(pd), std::move(s), std::move(wt)};
}

// w in the primitive's layout: w itself when the layouts agree, else reordered into per-thread
// scratch, or, when a version is given (Conv2DParams::weights_version), into the buffer kept for
// (its layouts, w), reordered only when the kept copy is older: every primitive taking that layout
// of w at that version reads the same copy.
memory prepared_weights(const Weights& wt, const float* w, std::uint64_t version = 0) {
  auto& st = stream();
  memory user_w(wt.user, engine(), const_cast<float*>(w));
  if (wt.to_chosen && version != 0) {
    auto [kept, valid] = kept_weights(wt.kept_key, wt.chosen.get_size(), w, version);
    memory prim_w(wt.chosen, engine(), kept);
    if (!valid) wt.to_chosen->execute(st, user_w, prim_w);
    return prim_w;
  }
  memory prim_w = chosen_memory(wt, const_cast<float*>(w));
  if (wt.to_chosen) wt.to_chosen->execute(st, user_w, prim_w);
  return prim_w;
}

// The forward primitive of `impl` (each kind in a cache of its own: ByRule, First, Jit).
template <class ByRule, class First, class Jit>
const ConvForward* forward_entry(const Conv2DParams& p, bool with_bias, bool in_bf16, ForwardImpl impl,
                                 bool out_bf16 = false) {
  switch (impl) {
    case ForwardImpl::by_rule:
      return cached<ByRule>(conv_key(p, with_bias), [&] {
        return as_entry<ByRule>(make_forward(p, with_bias, in_bf16, std::nullopt, out_bf16));
      });
    case ForwardImpl::first_offered:
      return cached<First>(conv_key(p, with_bias), [&] {
        return as_entry<First>(make_forward(p, with_bias, in_bf16, false, out_bf16));
      });
    case ForwardImpl::direct_jit:
      break;
  }
  return cached<Jit>(conv_key(p, with_bias),
                     [&] { return as_entry<Jit>(make_forward(p, with_bias, in_bf16, true, out_bf16)); });
}

}  // namespace

bool conv_forward(const Conv2DParams& p, const float* x, const float* w, const float* b, float* y) {
  return conv_forward_impl(p, x, w, b, y, ForwardImpl::by_rule);
}

bool conv_forward_impl(const Conv2DParams& p, const float* x, const float* w, const float* b, float* y,
                       ForwardImpl impl) {
  const bool with_bias = b != nullptr;
  const ConvForward* e =
      forward_entry<ConvForward, ConvForwardFirst, ConvForwardJit>(p, with_bias, false, impl);
  if (!e) return false;

  auto& st = stream();
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, memory(e->shape.src, engine(), const_cast<float*>(x))},
                                       {DNNL_ARG_WEIGHTS, prepared_weights(e->weights, w, p.weights_version)},
                                       {DNNL_ARG_DST, memory(e->shape.dst, engine(), y)}};
  if (with_bias) args.emplace(DNNL_ARG_BIAS, memory(e->shape.bias, engine(), const_cast<float*>(b)));
  add_residual_arg(args, e->shape.dst, p.residual);
  e->prim.execute(st, args);
  st.wait();
  return true;
}

// oneDNN 2.6's backward-data kernel is slower than its direct forward kernel on ResNet-20's
// stride-1 3×3 layers of 16 and 32 channels. Measured on an Intel Xeon (family 6 model 207,
// AVX-512, one thread; the fastest of 12 steps of `reskit bench --model resnet20 --input 28,28,1
// --batch-size 128`, bench/onednn_step_times.py, three runs at different loads): 28×28×16
// backward-data 3.05-4.6 ms against that shape's forward 2.7-3.2 ms, 14×14×32 2.8-3.7 ms against
// the direct forward's 2.5-2.7; at 7×7×64 the two were even, so wider layers keep the primitive.
// Not measured on Zen 5: Intel CPUs only. The flipped forward sums in another order: float32 dx
// differs from the primitive's in the last bits. A fixed rule of the shape and the CPU's vendor,
// never a timing.
bool flipped_backward_data(const Conv2DParams& p) {
  if (!cpu_is_intel()) return false;
  const bool same = p.stride_h == 1 && p.stride_w == 1 && p.r % 2 == 1 && p.s % 2 == 1 &&
                    p.pad_top == (p.r - 1) / 2 && p.pad_left == (p.s - 1) / 2 && p.p == p.h && p.q == p.w;
  return same && p.r * p.s > 1 && p.c <= 32 && p.k <= 32;
}

bool conv_backward_data(const Conv2DParams& p, const float* dy, const float* w, float* dx) {
  return conv_backward_data_impl(p, dy, w, dx, BackwardDataImpl::by_rule);
}

bool conv_backward_data_impl(const Conv2DParams& p, const float* dy, const float* w, float* dx,
                             BackwardDataImpl impl) {
  if (impl == BackwardDataImpl::flipped_forward ||
      (impl == BackwardDataImpl::by_rule && flipped_backward_data(p))) {
    return conv_backward_data_flipped(p, dy, w, dx);
  }
  const auto* e = cached<ConvBackwardData>(conv_key(p, false), [&] { return make_backward_data(p, false); });
  if (!e) return false;

  auto& st = stream();
  e->prim.execute(st, {{DNNL_ARG_DIFF_DST, memory(e->shape.dst, engine(), const_cast<float*>(dy))},
                       {DNNL_ARG_WEIGHTS, prepared_weights(e->weights, w, p.weights_version)},
                       {DNNL_ARG_DIFF_SRC, memory(e->shape.src, engine(), dx)}});
  st.wait();
  return true;
}

bool conv_backward_weights(const Conv2DParams& p, const float* x, const float* dy, float* dw, float* db) {
  const bool with_bias = db != nullptr;
  const auto* e = cached<ConvBackwardWeights>(conv_key(p, with_bias),
                                              [&] { return make_backward_weights(p, with_bias, false); });
  if (!e) return false;

  run_backward_weights(e->prim, e->weights, e->shape.bias,
                       memory(e->shape.src, engine(), const_cast<float*>(x)),
                       memory(e->shape.dst, engine(), const_cast<float*>(dy)), dw, db);
  stream().wait();
  return true;
}

// ---- float32 Winograd ----
//
// oneDNN 2.6's Winograd kernels (jit_wino_4x3:avx512_core, F(4x4, 3x3)) take activations only in
// its blocked layout nChw16c (16 channels innermost, blocks of 16 channels outermost after N), not
// NHWC: each call reorders its NHWC operands into per-thread scratch and its result back. Over
// 16 channels nChw16c and NHWC are the same bytes, so no reorder runs there.

bool winograd_weights(const Conv2DParams& p) {
  const std::int64_t tiles = p.n * ((p.p + 3) / 4) * ((p.q + 3) / 4);
  return p.r == 3 && p.s == 3 && p.stride_h == 1 && p.stride_w == 1 && p.pad_top == 1 && p.pad_left == 1 &&
         p.p == p.h && p.q == p.w && p.c % 16 == 0 && p.k % 16 == 0 && p.p >= 4 && p.q >= 4 && tiles >= 32;
}
bool winograd(const Conv2DParams& p) {
  return winograd_weights(p) && ((p.c >= 32 && p.k >= 32) || p.p * p.q <= 28 * 28) && p.residual == nullptr;
}

namespace {

// One NHWC operand as the Winograd primitive takes it: its blocked form, and the reorder between
// the two where they differ (more than 16 channels).
struct Blocked {
  memory::desc user, blocked;
  std::optional<dnnl::reorder> reorder;  // user -> blocked for an input, blocked -> user for a result
};
Blocked blocked_for(const memory::desc& user, std::int64_t n, std::int64_t c, std::int64_t h, std::int64_t w,
                    bool input) {
  Blocked b{user, memory::desc({n, c, h, w}, f32, tag::nChw16c), std::nullopt};
  if (c != 16) {
    b.reorder = input ? dnnl::reorder(dnnl::reorder::primitive_desc(engine(), user, engine(), b.blocked))
                      : dnnl::reorder(dnnl::reorder::primitive_desc(engine(), b.blocked, engine(), user));
  }
  return b;
}
// Per-thread scratch for the blocked operands: slot 0 and 1 (a pass has two), and slot 2 for
// backward-data's dy, which the backward-weights that follows may read (LastDy).
Scratch& blocked_scratch(int slot) {
  thread_local std::array<Scratch, 3> s;
  return s[static_cast<std::size_t>(slot)];
}
constexpr int kDySlot = 2;
// What scratch slot 2 holds on this thread: the blocked form (layout `blocked`) of dy at `version`
// (Conv2DParams::dy_version; 0: nothing reusable).
struct LastDy {
  const float* data = nullptr;
  std::uint64_t version = 0;
  memory::desc blocked;
};
LastDy& last_dy() {
  thread_local LastDy d;
  return d;
}
// The blocked memory of an input (reordered into scratch slot `slot` where needed).
memory blocked_input(const Blocked& b, const float* data, int slot) {
  if (!b.reorder) return memory(b.blocked, engine(), const_cast<float*>(data));
  memory blocked(b.blocked, engine(), blocked_scratch(slot).get(b.blocked.get_size()));
  memory user(b.user, engine(), const_cast<float*>(data));
  b.reorder->execute(stream(), user, blocked);
  return blocked;
}
// The blocked memory a result is written to (scratch slot `slot` where it must be reordered after).
memory blocked_output(const Blocked& b, float* data, int slot) {
  if (!b.reorder) return memory(b.blocked, engine(), data);
  return memory(b.blocked, engine(), blocked_scratch(slot).get(b.blocked.get_size()));
}
void to_user(const Blocked& b, memory blocked, float* data) {
  if (!b.reorder) return;
  memory user(b.user, engine(), data);
  b.reorder->execute(stream(), blocked, user);
}

bool is_winograd(const dnnl::primitive_desc_base& pd) {
  return std::strncmp(pd.impl_info_str(), "jit_wino", 8) == 0;
}

dnnl::convolution_forward::primitive_desc winograd_forward_pd(const ConvShape& s, const memory::desc& src,
                                                              const memory::desc& dst, bool with_bias,
                                                              bool relu) {
  const auto desc = with_bias ? dnnl::convolution_forward::desc(
                                    dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_winograd,
                                    src, s.any_weights, s.bias, dst, s.strides, s.padding_l, s.padding_r)
                              : dnnl::convolution_forward::desc(
                                    dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_winograd,
                                    src, s.any_weights, dst, s.strides, s.padding_l, s.padding_r);
  return {desc, forward_epilogue(dst, false, relu), engine()};
}

struct WinogradForward {
  dnnl::convolution_forward prim;
  ConvShape shape;
  Weights weights;
  Blocked src, dst;
};
struct WinogradBackwardData {
  dnnl::convolution_backward_data prim;
  ConvShape shape;
  Weights weights;
  Blocked diff_dst, diff_src;
};
struct WinogradBackwardWeights {
  dnnl::convolution_backward_weights prim;
  ConvShape shape;
  Weights weights;
  Blocked src, diff_dst;
};

std::optional<WinogradForward> make_winograd_forward(const Conv2DParams& p, bool with_bias) {
  ConvShape s = conv_shape(p);
  Blocked src = blocked_for(s.src, p.n, p.c, p.h, p.w, true),
          dst = blocked_for(s.dst, p.n, p.k, p.p, p.q, false);
  const auto pd = winograd_forward_pd(s, src.blocked, dst.blocked, with_bias, p.relu);
  if (!is_winograd(pd)) return std::nullopt;
  Weights wt = weights_for(s, pd.weights_desc(), true);
  return WinogradForward{dnnl::convolution_forward(pd), std::move(s), std::move(wt), std::move(src),
                         std::move(dst)};
}

std::optional<WinogradBackwardData> make_winograd_backward_data(const Conv2DParams& p) {
  ConvShape s = conv_shape(p);
  Blocked dy = blocked_for(s.dst, p.n, p.k, p.p, p.q, true),
          dx = blocked_for(s.src, p.n, p.c, p.h, p.w, false);
  const auto hint = winograd_forward_pd(s, dx.blocked, dy.blocked, false, false);
  const dnnl::convolution_backward_data::desc desc(dnnl::algorithm::convolution_winograd, dx.blocked,
                                                   s.any_weights, dy.blocked, s.strides, s.padding_l,
                                                   s.padding_r);
  const dnnl::convolution_backward_data::primitive_desc pd(desc, engine(), hint);
  if (!is_winograd(pd)) return std::nullopt;
  Weights wt = weights_for(s, pd.weights_desc(), true);
  return WinogradBackwardData{dnnl::convolution_backward_data(pd), std::move(s), std::move(wt), std::move(dy),
                              std::move(dx)};
}

std::optional<WinogradBackwardWeights> make_winograd_backward_weights(const Conv2DParams& p, bool with_bias) {
  ConvShape s = conv_shape(p);
  Blocked x = blocked_for(s.src, p.n, p.c, p.h, p.w, true), dy = blocked_for(s.dst, p.n, p.k, p.p, p.q, true);
  const auto hint = winograd_forward_pd(s, x.blocked, dy.blocked, with_bias, false);
  const auto desc = with_bias ? dnnl::convolution_backward_weights::desc(
                                    dnnl::algorithm::convolution_winograd, x.blocked, s.any_weights, s.bias,
                                    dy.blocked, s.strides, s.padding_l, s.padding_r)
                              : dnnl::convolution_backward_weights::desc(
                                    dnnl::algorithm::convolution_winograd, x.blocked, s.any_weights,
                                    dy.blocked, s.strides, s.padding_l, s.padding_r);
  const dnnl::convolution_backward_weights::primitive_desc pd(desc, engine(), hint);
  if (!is_winograd(pd)) return std::nullopt;
  Weights wt = weights_for(s, pd.diff_weights_desc(), false);
  return WinogradBackwardWeights{dnnl::convolution_backward_weights(pd), std::move(s), std::move(wt),
                                 std::move(x), std::move(dy)};
}

}  // namespace

bool conv_forward_winograd(const Conv2DParams& p, const float* x, const float* w, const float* b, float* y,
                           bool by_rule) {
  if (by_rule ? !winograd(p) : p.residual != nullptr) return false;
  const bool with_bias = b != nullptr;
  const auto* e =
      cached<WinogradForward>(conv_key(p, with_bias), [&] { return make_winograd_forward(p, with_bias); });
  if (!e) return false;
  auto& st = stream();
  const memory x_blocked = blocked_input(e->src, x, 0);
  const memory y_blocked = blocked_output(e->dst, y, 1);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, x_blocked},
                                       {DNNL_ARG_WEIGHTS, prepared_weights(e->weights, w, p.weights_version)},
                                       {DNNL_ARG_DST, y_blocked}};
  if (with_bias) args.emplace(DNNL_ARG_BIAS, memory(e->shape.bias, engine(), const_cast<float*>(b)));
  e->prim.execute(st, args);
  to_user(e->dst, y_blocked, y);
  st.wait();
  return true;
}

bool conv_backward_data_winograd(const Conv2DParams& p, const float* dy, const float* w, float* dx,
                                 bool by_rule) {
  if (by_rule && !winograd(p)) return false;
  const auto* e =
      cached<WinogradBackwardData>(conv_key(p, false), [&] { return make_winograd_backward_data(p); });
  if (!e) return false;
  auto& st = stream();
  const memory dy_blocked = blocked_input(e->diff_dst, dy, kDySlot);
  if (e->diff_dst.reorder) last_dy() = {dy, p.dy_version, e->diff_dst.blocked};
  const memory dx_blocked = blocked_output(e->diff_src, dx, 1);
  e->prim.execute(st, {{DNNL_ARG_DIFF_DST, dy_blocked},
                       {DNNL_ARG_WEIGHTS, prepared_weights(e->weights, w, p.weights_version)},
                       {DNNL_ARG_DIFF_SRC, dx_blocked}});
  to_user(e->diff_src, dx_blocked, dx);
  st.wait();
  return true;
}

bool conv_backward_weights_winograd(const Conv2DParams& p, const float* x, const float* dy, float* dw,
                                    float* db, bool by_rule) {
  if (by_rule && !winograd_weights(p)) return false;
  const bool with_bias = db != nullptr;
  const auto* e = cached<WinogradBackwardWeights>(
      conv_key(p, with_bias), [&] { return make_winograd_backward_weights(p, with_bias); });
  if (!e) return false;
  const memory x_blocked = blocked_input(e->src, x, 0);
  // dy as backward-data left it in slot 2 when it is the same tensor at the same version.
  const LastDy& d = last_dy();
  const bool reuse = e->diff_dst.reorder && p.dy_version != 0 && d.data == dy && d.version == p.dy_version &&
                     d.blocked == e->diff_dst.blocked;
  const memory dy_blocked = reuse ? memory(e->diff_dst.blocked, engine(), blocked_scratch(kDySlot).get(0))
                                  : blocked_input(e->diff_dst, dy, 1);
  run_backward_weights(e->prim, e->weights, e->shape.bias, x_blocked, dy_blocked, dw, db);
  stream().wait();
  return true;
}

// ---- mixed precision (bfloat16 operands, float32 accumulation and results) ----
//
// The caller's tensors stay float32. The bfloat16 operands are the caller's roundings where it
// passes them (Conv2DParams::x_bf16, dy_bf16, w_bf16); any other operand is converted per call
// into per-thread scratch buffers with a cached oneDNN reorder (onednn_engine.h; a convolution
// primitive's weight reorder converts its weights on the way). Results (y, dx, dw, db) are written
// in float32 directly. A CPU without bf16 support gets only reference primitives: false.

namespace {

// bfloat16 bits of an [N,H,W,C] tensor as an NHWC memory.
memory nhwc_bf16(std::int64_t n, std::int64_t h, std::int64_t w, std::int64_t c, const std::uint16_t* bits) {
  return memory(memory::desc({n, c, h, w}, bf16, tag::nhwc), engine(), const_cast<std::uint16_t*>(bits));
}

}  // namespace

bool conv_forward_bf16(const Conv2DParams& p, const float* x, const float* w, const float* b, float* y) {
  return conv_forward_bf16_impl(p, x, w, b, y, ForwardImpl::by_rule);
}

bool conv_forward_bf16_impl(const Conv2DParams& p, const float* x, const float* w, const float* b, float* y,
                            ForwardImpl impl) {
  const bool with_bias = b != nullptr;
  const bool out_bf16 = p.y_bf16 != nullptr;
  const ConvForward* e =
      out_bf16
          ? forward_entry<ConvForwardBf16<true>, ConvForwardBf16First<true>, ConvForwardBf16Jit<true>>(
                p, with_bias, true, impl, true)
          : forward_entry<ConvForwardBf16<false>, ConvForwardBf16First<false>, ConvForwardBf16Jit<false>>(
                p, with_bias, true, impl);
  if (!e) return false;

  auto& st = stream();
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC, nhwc_bf16(p.n, p.h, p.w, p.c, x_in_bf16(p, x))},
      {DNNL_ARG_WEIGHTS, prepared_weights(e->weights, w, p.weights_version)},
      {DNNL_ARG_DST, out_bf16 ? nhwc_bf16(p.n, p.p, p.q, p.k, p.y_bf16) : memory(e->shape.dst, engine(), y)}};
  if (with_bias) args.emplace(DNNL_ARG_BIAS, memory(e->shape.bias, engine(), const_cast<float*>(b)));
  e->prim.execute(st, args);
  st.wait();
  return true;
}

bool conv_backward_bf16(const Conv2DParams& p, const float* x, const float* dy, const float* w, float* dx,
                        float* dw, float* db) {
  const bool dx_out_bf16 = dx != nullptr && p.dx_bf16 != nullptr;
  const ConvBackwardData* ed = nullptr;
  if (dx_out_bf16) {
    ed = cached<ConvBackwardDataBf16<true>>(conv_key(p, false), [&] {
      return as_entry<ConvBackwardDataBf16<true>>(make_backward_data(p, true, true));
    });
    if (!ed) return false;
  } else if (dx != nullptr) {
    ed = cached<ConvBackwardDataBf16<false>>(conv_key(p, false), [&] {
      return as_entry<ConvBackwardDataBf16<false>>(make_backward_data(p, true));
    });
    if (!ed) return false;
  }
  const bool with_bias = db != nullptr;
  const ConvBackwardWeightsBf16* ew = nullptr;
  if (dw != nullptr) {
    ew = cached<ConvBackwardWeightsBf16>(conv_key(p, with_bias), [&] {
      return as_entry<ConvBackwardWeightsBf16>(make_backward_weights(p, with_bias, true));
    });
    if (!ew) return false;
  }

  auto& st = stream();
  const memory dy_bf = nhwc_bf16(p.n, p.p, p.q, p.k, dy_in_bf16(p, dy));
  if (ed) {
    ed->prim.execute(st, {{DNNL_ARG_DIFF_DST, dy_bf},
                          {DNNL_ARG_WEIGHTS, prepared_weights(ed->weights, w, p.weights_version)},
                          {DNNL_ARG_DIFF_SRC, dx_out_bf16 ? nhwc_bf16(p.n, p.h, p.w, p.c, p.dx_bf16)
                                                          : memory(ed->shape.src, engine(), dx)}});
  }
  if (ew) {
    run_backward_weights(ew->prim, ew->weights, ew->shape.bias,
                         nhwc_bf16(p.n, p.h, p.w, p.c, x_in_bf16(p, x)), dy_bf, dw, db);
  }
  st.wait();
  return true;
}

}  // namespace reskit::kernels::onednn
