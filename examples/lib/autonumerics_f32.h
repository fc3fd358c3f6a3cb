/* autonumerics_f32.h: float32 functions evolved by AutoNumerics.
 *
 * cbrt_f32: cbrt(x), every float32 input: max 0.6573 ULP, verified on all 2^32 float32 inputs, special values included
 * cos_f32: cos(x), every float32 input: max 0.6599 ULP, verified on all 2^32 float32 inputs, special values included
 * erf_f32: erf(x), every float32 input: max 0.9909 ULP, verified on all 2^32 float32 inputs, special values included
 * exp10_f32: exp10(x), every float32 input: max 0.9885 ULP, verified on all 2^32 float32 inputs, special values included
 * exp2_f32: exp2(x), every float32 input: max 0.8784 ULP, verified on all 2^32 float32 inputs, special values included
 * exp_f32: exp(x), every float32 input: max 0.8908 ULP, verified on all 2^32 float32 inputs, special values included
 * expm1_f32: expm1(x), every float32 input: max 0.8548 ULP, verified on all 2^32 float32 inputs, special values included
 * log10_f32: log10(x), every float32 input: max 0.8460 ULP, verified on all 2^32 float32 inputs, special values included
 * log1p_f32: log1p(x), every float32 input: max 0.8306 ULP, verified on all 2^32 float32 inputs, special values included
 * log_f32: log(x), every float32 input: max 0.8213 ULP, verified on all 2^32 float32 inputs, special values included
 * sigmoid_f32: sigmoid(x), every float32 input: max 0.8241 ULP, verified on all 2^32 float32 inputs, special values included
 * sin_f32: sin(x), every float32 input: max 0.6510 ULP, verified on all 2^32 float32 inputs, special values included
 * tanh_f32: tanh(x), every float32 input: max 0.8958 ULP, verified on all 2^32 float32 inputs, special values included
 *
 * Build autonumerics_f32.c with: cc -O3 -march=native -ffp-contract=off -fno-math-errno -c autonumerics_f32.c
 * -ffp-contract=off keeps every a*b+c a multiply and an add, as the programs say (GCC ignores the FP_CONTRACT pragma); -fno-math-errno lets sqrt vectorize; never -ffast-math (the sources refuse it). -march=native may be any x86-64 level: the array entry points use explicit AVX-512 intrinsics under x86-64-v4, AVX2 ones under x86-64-v3, a plain loop otherwise, and the results are the same bits.
 */
#ifndef AUTONUMERICS_LIB_AUTONUMERICS_F32_H
#define AUTONUMERICS_LIB_AUTONUMERICS_F32_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

float cbrt_f32(float x);
/* y[i] = cbrt_f32(x[i]) for i < n; y may be x, else they must not overlap (vectorized) */
void cbrt_f32_array(const float *x, float *y, size_t n);

float cos_f32(float x);
/* y[i] = cos_f32(x[i]) for i < n; y may be x, else they must not overlap (vectorized) */
void cos_f32_array(const float *x, float *y, size_t n);

float erf_f32(float x);
/* y[i] = erf_f32(x[i]) for i < n; y may be x, else they must not overlap (vectorized) */
void erf_f32_array(const float *x, float *y, size_t n);

float exp10_f32(float x);
/* y[i] = exp10_f32(x[i]) for i < n; y may be x, else they must not overlap (vectorized) */
void exp10_f32_array(const float *x, float *y, size_t n);

float exp2_f32(float x);
/* y[i] = exp2_f32(x[i]) for i < n; y may be x, else they must not overlap (vectorized) */
void exp2_f32_array(const float *x, float *y, size_t n);

float exp_f32(float x);
/* y[i] = exp_f32(x[i]) for i < n; y may be x, else they must not overlap (vectorized) */
void exp_f32_array(const float *x, float *y, size_t n);

float expm1_f32(float x);
/* y[i] = expm1_f32(x[i]) for i < n; y may be x, else they must not overlap (vectorized) */
void expm1_f32_array(const float *x, float *y, size_t n);

float log10_f32(float x);
/* y[i] = log10_f32(x[i]) for i < n; y may be x, else they must not overlap (vectorized) */
void log10_f32_array(const float *x, float *y, size_t n);

float log1p_f32(float x);
/* y[i] = log1p_f32(x[i]) for i < n; y may be x, else they must not overlap (vectorized) */
void log1p_f32_array(const float *x, float *y, size_t n);

float log_f32(float x);
/* y[i] = log_f32(x[i]) for i < n; y may be x, else they must not overlap (vectorized) */
void log_f32_array(const float *x, float *y, size_t n);

float sigmoid_f32(float x);
/* y[i] = sigmoid_f32(x[i]) for i < n; y may be x, else they must not overlap (vectorized) */
void sigmoid_f32_array(const float *x, float *y, size_t n);

float sin_f32(float x);
/* y[i] = sin_f32(x[i]) for i < n; y may be x, else they must not overlap (vectorized) */
void sin_f32_array(const float *x, float *y, size_t n);

float tanh_f32(float x);
/* y[i] = tanh_f32(x[i]) for i < n; y may be x, else they must not overlap (vectorized) */
void tanh_f32_array(const float *x, float *y, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* AUTONUMERICS_LIB_AUTONUMERICS_F32_H */
