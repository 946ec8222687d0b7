// Causal astromorphic read on the CPU, forward and backward.
//
// Per (batch * head) z and position t:
//     S_t   = sum_{s <= t} k_s v_s^T                (d_k x d_v state; k already holds 1/m and W_astro)
//     out_t = q_t^T sigmoid(S_t)
// Backward, with H_t = sigmoid(S_t) and go_t = dL/dout_t:
//     dq_t = H_t go_t
//     G_t  = sum_{t' >= t} H_t' (1 - H_t') (.) (q_t' go_t'^T)
//     dk_t = G_t v_t ,  dv_t = G_t^T k_t
//
// Inputs are head-major and contiguous: q, k (Z, N, dk), v and the output gradient (Z, N, dv). Work items
// are (z, tile of T columns of the state); one item walks t in order with its dk x T slice of the state in
// cache, applies the sigmoid in place and never writes the prefix states to memory. The forward pass saves
// the state at the start of every chunk (Z, n_chunks, dk, dv). The backward pass walks the chunks in
// reverse: from the chunk's saved state it recomputes sub-chunk checkpoints (state updates only), then for
// each sub-chunk, last first, recomputes its sigmoids into a small buffer (sub x dk x T, sized for the
// cache) and walks back through it, carrying G. With several column tiles, dq and dk are partial sums over
// the columns of each tile (the caller adds the tiles).
//
// The sigmoid uses a polynomial exponential: with AVX-512, float rows use the intrinsics version below
// (sigmoid16); otherwise a scalar version that the compiler vectorises (a degree-6 Taylor polynomial on
// [-ln2/2, ln2/2] for float, degree 13 for double). All are about one unit in the last place, and NaN
// propagates. Plain C ABI (called through ctypes): every function returns 0 on success.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace {

constexpr int kAlign = 64;

// Scratch space comes from the caller (so that its allocator accounts for it): one slice per thread of
// forward_scratch / backward_scratch elements, 64-byte aligned.
int64_t round_up(int64_t count) { return (count + 15) / 16 * 16; }

int thread_index() {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

template <typename F, typename I>
inline F bits_to(I bits) {
    F out;
    std::memcpy(&out, &bits, sizeof(F));
    return out;
}

inline float sigmoid(float x) {
    // exp(-x) = 2^n * exp(r), n = round(-x / ln2), |r| <= ln2 / 2
    float y = -x;
    y = y > 87.0f ? 87.0f : y;  // comparisons are false for NaN, which passes through
    y = y < -87.0f ? -87.0f : y;
    const float n = __builtin_rintf(y * 1.44269504088896341f);
    float r = y - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const int32_t e = (static_cast<int32_t>(n) + 127) << 23;
    return 1.0f / (1.0f + p * bits_to<float>(e));
}

inline double sigmoid(double x) {
    double y = -x;
    y = y > 708.0 ? 708.0 : y;
    y = y < -708.0 ? -708.0 : y;
    const double n = __builtin_rint(y * 1.4426950408889634074);
    double r = y - n * 6.93147180369123816490e-01;
    r = r - n * 1.90821492927058770002e-10;
    double p = 1.0 / 6227020800.0;  // 1 / 13!
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    const int64_t e = (static_cast<int64_t>(n) + 1023) << 52;
    return 1.0 / (1.0 + p * bits_to<double>(e));
}

// Copy w <= T entries into a T-wide padded row (zeros beyond w).
template <typename F, int T>
inline void load_row(F* __restrict dst, const F* __restrict src, int64_t w) {
    for (int j = 0; j < T; ++j) dst[j] = j < w ? src[j] : F(0);
}

template <typename F, int T>
inline void load_tile(F* __restrict tile, const F* __restrict src, int64_t dk, int64_t dv, int64_t w) {
    for (int64_t i = 0; i < dk; ++i) load_row<F, T>(tile + i * T, src + i * dv, w);
}

// S += k v^T (state updates only).
template <typename F, int T>
inline void update(F* __restrict S, const F* __restrict kr, const F* __restrict vt, int64_t dk) {
    for (int64_t i = 0; i < dk; ++i) {
        const F ki = kr[i];
        F* __restrict s = S + i * T;
#pragma omp simd
        for (int j = 0; j < T; ++j) s[j] += ki * vt[j];
    }
}

// One row i of the state tile, T columns: the three inner loops of the kernel. Generic versions (the
// compiler vectorises them); float versions with AVX-512 intrinsics below.

// s <- s + ki vt ; acc += qi sigmoid(s)
template <typename F, int T>
struct Rows {
    static inline void forward(F* __restrict s, const F* __restrict vt, F* __restrict acc, F ki, F qi) {
#pragma omp simd
        for (int j = 0; j < T; ++j) {
            const F x = s[j] + ki * vt[j];
            s[j] = x;
            acc[j] += qi * sigmoid(x);
        }
    }
    // s <- s + ki vt ; h <- sigmoid(s) ; returns h . gt
    static inline F recompute(F* __restrict s, F* __restrict h, const F* __restrict vt, const F* __restrict gt, F ki) {
        F dot = F(0);
#pragma omp simd reduction(+ : dot)
        for (int j = 0; j < T; ++j) {
            const F x = s[j] + ki * vt[j];
            s[j] = x;
            const F y = sigmoid(x);
            h[j] = y;
            dot += y * gt[j];
        }
        return dot;
    }
    // g <- g + h (1 - h) qi gt ; acc += ki g ; returns g . vt
    static inline F walk(const F* __restrict h, F* __restrict g, const F* __restrict vt, const F* __restrict gt,
                         F* __restrict acc, F qi, F ki) {
        F dot = F(0);
#pragma omp simd reduction(+ : dot)
        for (int j = 0; j < T; ++j) {
            const F y = h[j];
            const F gij = g[j] + (y - y * y) * (qi * gt[j]);
            g[j] = gij;
            dot += gij * vt[j];
            acc[j] += gij * ki;
        }
        return dot;
    }
};

#if defined(__AVX512F__)
// sigmoid(x) = 1 / (1 + exp(-x)) for 16 floats: x clamped to [-87, 87] (sigmoid(-87) = 1.6e-38, the
// smallest normal float; NaN passes the clamp), exp(-x) = 2^n exp(r) with n = round(-x / ln2), exp(r) by a
// degree-5 polynomial fitted for relative error on [-ln2/2, ln2/2] (1.4e-7), 2^n by scalef; the reciprocal
// by rcp14 and one Newton step. About 1 ulp; 16 vector operations.
inline __m512 sigmoid16(__m512 x) {
    // max/min return their second operand when one is NaN: the constant goes first so NaN propagates
    const __m512 xc = _mm512_max_ps(_mm512_set1_ps(-87.0f), _mm512_min_ps(_mm512_set1_ps(87.0f), x));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(-1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmsub_ps(n, _mm512_set1_ps(0.693359375f), xc);  // -x - n ln2 (two parts)
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(8.29765480e-3f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.19153832e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.66675746e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.99988943e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(9.99999702e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.00000012f));
    const __m512 d = _mm512_add_ps(_mm512_scalef_ps(p, n), _mm512_set1_ps(1.0f));
    const __m512 s = _mm512_rcp14_ps(d);
    return _mm512_mul_ps(s, _mm512_fnmadd_ps(d, s, _mm512_set1_ps(2.0f)));
}

template <int T>
struct Rows16 {
    static_assert(T % 16 == 0, "AVX-512 rows are whole vectors");
    static constexpr int V = T / 16;
    static inline void forward(float* __restrict s, const float* __restrict vt, float* __restrict acc, float ki,
                               float qi) {
        const __m512 k = _mm512_set1_ps(ki), q = _mm512_set1_ps(qi);
        for (int c = 0; c < V; ++c) {
            const __m512 x = _mm512_fmadd_ps(k, _mm512_loadu_ps(vt + 16 * c), _mm512_loadu_ps(s + 16 * c));
            _mm512_storeu_ps(s + 16 * c, x);
            _mm512_storeu_ps(acc + 16 * c, _mm512_fmadd_ps(q, sigmoid16(x), _mm512_loadu_ps(acc + 16 * c)));
        }
    }
    static inline float recompute(float* __restrict s, float* __restrict h, const float* __restrict vt,
                                  const float* __restrict gt, float ki) {
        const __m512 k = _mm512_set1_ps(ki);
        __m512 dot = _mm512_setzero_ps();
        for (int c = 0; c < V; ++c) {
            const __m512 x = _mm512_fmadd_ps(k, _mm512_loadu_ps(vt + 16 * c), _mm512_loadu_ps(s + 16 * c));
            _mm512_storeu_ps(s + 16 * c, x);
            const __m512 y = sigmoid16(x);
            _mm512_storeu_ps(h + 16 * c, y);
            dot = _mm512_fmadd_ps(y, _mm512_loadu_ps(gt + 16 * c), dot);
        }
        return _mm512_reduce_add_ps(dot);
    }
    static inline float walk(const float* __restrict h, float* __restrict g, const float* __restrict vt,
                             const float* __restrict gt, float* __restrict acc, float qi, float ki) {
        const __m512 k = _mm512_set1_ps(ki), q = _mm512_set1_ps(qi);
        __m512 dot = _mm512_setzero_ps();
        for (int c = 0; c < V; ++c) {
            const __m512 y = _mm512_loadu_ps(h + 16 * c);
            const __m512 slope = _mm512_fnmadd_ps(y, y, y);  // y - y^2
            const __m512 gij = _mm512_fmadd_ps(slope, _mm512_mul_ps(q, _mm512_loadu_ps(gt + 16 * c)),
                                               _mm512_loadu_ps(g + 16 * c));
            _mm512_storeu_ps(g + 16 * c, gij);
            dot = _mm512_fmadd_ps(gij, _mm512_loadu_ps(vt + 16 * c), dot);
            _mm512_storeu_ps(acc + 16 * c, _mm512_fmadd_ps(k, gij, _mm512_loadu_ps(acc + 16 * c)));
        }
        return _mm512_reduce_add_ps(dot);
    }
};

template <>
struct Rows<float, 16> : Rows16<16> {};
template <>
struct Rows<float, 32> : Rows16<32> {};
template <>
struct Rows<float, 64> : Rows16<64> {};
#endif

template <typename F, int T>
void forward_item(const F* __restrict q, const F* __restrict k, const F* __restrict v, F* __restrict out,
                  F* __restrict starts, int64_t n, int64_t dk, int64_t dv, int64_t j0, int64_t chunk,
                  F* __restrict scratch) {
    const int64_t w = std::min<int64_t>(T, dv - j0);
    F* __restrict S = scratch;
    std::fill(S, S + dk * T, F(0));
    alignas(kAlign) F vt[T];
    alignas(kAlign) F acc[T];
    for (int64_t t = 0; t < n; ++t) {
        if (t % chunk == 0) {
            F* dst = starts + (t / chunk) * dk * dv + j0;
            for (int64_t i = 0; i < dk; ++i) std::memcpy(dst + i * dv, S + i * T, w * sizeof(F));
        }
        load_row<F, T>(vt, v + t * dv + j0, w);
        for (int j = 0; j < T; ++j) acc[j] = F(0);
        const F* qr = q + t * dk;
        const F* kr = k + t * dk;
        for (int64_t i = 0; i < dk; ++i) {
            Rows<F, T>::forward(S + i * T, vt, acc, kr[i], qr[i]);
        }
        std::memcpy(out + t * dv + j0, acc, w * sizeof(F));
    }
}

template <typename F, int T>
void backward_item(const F* __restrict q, const F* __restrict k, const F* __restrict v, const F* __restrict go,
                   const F* __restrict starts, F* __restrict dq, F* __restrict dkk, F* __restrict dvv, int64_t n,
                   int64_t dk, int64_t dv, int64_t j0, int64_t chunk, int64_t sub, F* __restrict scratch) {
    const int64_t w = std::min<int64_t>(T, dv - j0);
    const int64_t tile = dk * T;
    const int64_t n_sub_max = (chunk + sub - 1) / sub;
    F* __restrict S = scratch;
    F* __restrict G = S + tile;
    F* __restrict checkpoints = G + tile;
    F* __restrict H = checkpoints + n_sub_max * tile;
    std::fill(G, G + tile, F(0));
    alignas(kAlign) F vt[T];
    alignas(kAlign) F gt[T];
    alignas(kAlign) F acc[T];
    const int64_t n_chunks = (n + chunk - 1) / chunk;
    for (int64_t b = n_chunks - 1; b >= 0; --b) {
        const int64_t lo = b * chunk, hi = std::min(n, lo + chunk);
        const int64_t n_sub = (hi - lo + sub - 1) / sub;
        // state at the start of every sub-chunk
        load_tile<F, T>(checkpoints, starts + b * dk * dv + j0, dk, dv, w);
        for (int64_t s = 1; s < n_sub; ++s) {
            F* cur = checkpoints + s * tile;
            std::memcpy(cur, cur - tile, tile * sizeof(F));
            for (int64_t t = lo + (s - 1) * sub; t < lo + s * sub; ++t) {
                load_row<F, T>(vt, v + t * dv + j0, w);
                update<F, T>(cur, k + t * dk, vt, dk);
            }
        }
        for (int64_t s = n_sub - 1; s >= 0; --s) {
            const int64_t a = lo + s * sub, e = std::min(hi, a + sub);
            std::memcpy(S, checkpoints + s * tile, tile * sizeof(F));
            // recompute the sigmoids of the sub-chunk; dq_t = H_t go_t
            for (int64_t t = a; t < e; ++t) {
                load_row<F, T>(vt, v + t * dv + j0, w);
                load_row<F, T>(gt, go + t * dv + j0, w);
                const F* kr = k + t * dk;
                F* __restrict h = H + (t - a) * tile;
                for (int64_t i = 0; i < dk; ++i)
                    dq[t * dk + i] = Rows<F, T>::recompute(S + i * T, h + i * T, vt, gt, kr[i]);
            }
            // walk back: G += H (1 - H) (.) q go^T ; dk_t = G v_t ; dv_t = G^T k_t
            for (int64_t t = e - 1; t >= a; --t) {
                load_row<F, T>(vt, v + t * dv + j0, w);
                load_row<F, T>(gt, go + t * dv + j0, w);
                for (int j = 0; j < T; ++j) acc[j] = F(0);
                const F* qr = q + t * dk;
                const F* kr = k + t * dk;
                const F* __restrict h = H + (t - a) * tile;
                for (int64_t i = 0; i < dk; ++i)
                    dkk[t * dk + i] = Rows<F, T>::walk(h + i * T, G + i * T, vt, gt, acc, qr[i], kr[i]);
                std::memcpy(dvv + t * dv + j0, acc, w * sizeof(F));
            }
        }
    }
}

template <typename F, int T>
int forward_all(const F* q, const F* k, const F* v, F* out, F* starts, F* scratch, int64_t z, int64_t n, int64_t dk,
                int64_t dv, int64_t chunk, int threads) {
    const int64_t tiles = (dv + T - 1) / T;
    const int64_t items = z * tiles;
    const int64_t n_chunks = (n + chunk - 1) / chunk;
    const int64_t stride = round_up(dk * T);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int64_t item = 0; item < items; ++item) {
        const int64_t zi = item / tiles, j0 = (item % tiles) * T;
        forward_item<F, T>(q + zi * n * dk, k + zi * n * dk, v + zi * n * dv, out + zi * n * dv,
                           starts + zi * n_chunks * dk * dv, n, dk, dv, j0, chunk, scratch + thread_index() * stride);
    }
    return 0;
}

template <typename F, int T>
int backward_all(const F* q, const F* k, const F* v, const F* go, const F* starts, F* dq, F* dk_, F* dv_, F* scratch,
                 int64_t z, int64_t n, int64_t dk, int64_t dv, int64_t chunk, int64_t sub, int threads) {
    // dq, dk_: (tiles, Z, N, dk) partial sums over the columns of each tile; dv_: (Z, N, dv)
    const int64_t tiles = (dv + T - 1) / T;
    const int64_t items = z * tiles;
    const int64_t n_chunks = (n + chunk - 1) / chunk;
    const int64_t stride = round_up(dk * T * (2 + (chunk + sub - 1) / sub + sub));
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int64_t item = 0; item < items; ++item) {
        const int64_t zi = item / tiles, ti = item % tiles;
        const int64_t part = (ti * z + zi) * n * dk;
        backward_item<F, T>(q + zi * n * dk, k + zi * n * dk, v + zi * n * dv, go + zi * n * dv,
                            starts + zi * n_chunks * dk * dv, dq + part, dk_ + part, dv_ + zi * n * dv, n, dk, dv, ti * T,
                            chunk, sub, scratch + thread_index() * stride);
    }
    return 0;
}

bool bad_sizes(int64_t z, int64_t n, int64_t dk, int64_t dv, int64_t chunk, int threads) {
    return z < 1 || n < 1 || dk < 1 || dv < 1 || chunk < 1 || threads < 1;
}

}  // namespace

extern "C" {

int astro_abi_version() { return 2; }

// Scratch elements per thread (the caller passes threads * this many, 64-byte aligned).
int64_t astro_forward_scratch(int64_t dk, int64_t tile) { return round_up(dk * tile); }
int64_t astro_backward_scratch(int64_t dk, int64_t tile, int64_t chunk, int64_t sub) {
    return round_up(dk * tile * (2 + (chunk + sub - 1) / sub + sub));
}

#define ASTRO_DEFINE(F, SUFFIX)                                                                                    \
    int astro_causal_forward_##SUFFIX(const F* q, const F* k, const F* v, F* out, F* starts, F* scratch, int64_t z, \
                                      int64_t n, int64_t dk, int64_t dv, int64_t chunk, int64_t tile, int threads) { \
        if (bad_sizes(z, n, dk, dv, chunk, threads)) return 1;                                                     \
        switch (tile) {                                                                                            \
            case 8: return forward_all<F, 8>(q, k, v, out, starts, scratch, z, n, dk, dv, chunk, threads);         \
            case 16: return forward_all<F, 16>(q, k, v, out, starts, scratch, z, n, dk, dv, chunk, threads);       \
            case 32: return forward_all<F, 32>(q, k, v, out, starts, scratch, z, n, dk, dv, chunk, threads);       \
            case 64: return forward_all<F, 64>(q, k, v, out, starts, scratch, z, n, dk, dv, chunk, threads);       \
            default: return 1;                                                                                     \
        }                                                                                                          \
    }                                                                                                              \
    int astro_causal_backward_##SUFFIX(const F* q, const F* k, const F* v, const F* go, const F* starts, F* dq,      \
                                       F* dk_, F* dv_, F* scratch, int64_t z, int64_t n, int64_t dk, int64_t dv,     \
                                       int64_t chunk, int64_t sub, int64_t tile, int threads) {                      \
        if (bad_sizes(z, n, dk, dv, chunk, threads) || sub < 1) return 1;                                          \
        switch (tile) {                                                                                            \
            case 8: return backward_all<F, 8>(q, k, v, go, starts, dq, dk_, dv_, scratch, z, n, dk, dv, chunk, sub, threads);   \
            case 16: return backward_all<F, 16>(q, k, v, go, starts, dq, dk_, dv_, scratch, z, n, dk, dv, chunk, sub, threads); \
            case 32: return backward_all<F, 32>(q, k, v, go, starts, dq, dk_, dv_, scratch, z, n, dk, dv, chunk, sub, threads); \
            case 64: return backward_all<F, 64>(q, k, v, go, starts, dq, dk_, dv_, scratch, z, n, dk, dv, chunk, sub, threads); \
            default: return 1;                                                                                     \
        }                                                                                                          \
    }

ASTRO_DEFINE(float, f32)
ASTRO_DEFINE(double, f64)

}  // extern "C"
