//! diffusers 0.15.1 `PNDMScheduler` with `skip_prk_steps = true` (PLMS only), spec Appendix C.
//!
//! Float32 like the reference: betas from a float32 `linspace`, `alphas_cumprod` accumulated in
//! float64 and rounded to float32 at each output (torch's CPU `cumprod`), float32 coefficients.
use candle_core::Tensor;

use super::config::SchedulerConfig;
use crate::Result;

/// What one [`Pndm::step`] did (the reference's `step` result plus `_get_prev_sample`'s inputs).
#[derive(Debug, Clone)]
pub struct StepOutput {
    pub prev_sample: Tensor,
    /// The multistep-combined epsilon `e'`.
    pub eps_combined: Tensor,
    /// The sample the update was applied to (the step-0 sample at step 1).
    pub sample_used: Tensor,
    /// `(t, prev_t)` used for the alpha lookups; `prev_t < 0` means `final_alpha_cumprod`.
    pub t_prev_t: (i64, i64),
}

#[derive(Debug, Clone)]
pub struct Pndm {
    pub alphas_cumprod: Vec<f32>,
    pub final_alpha_cumprod: f32,
    num_train_timesteps: usize,
    steps_offset: usize,
    ratio: usize,
    timesteps: Vec<usize>,
    ets: Vec<Tensor>,
    counter: usize,
    cur_sample: Option<Tensor>,
}

/// `torch.linspace(start, end, n, dtype=float32)`: float32 step, the first half counted from
/// `start`, the second half from `end` (ATen's CPU kernel).
fn linspace_f32(start: f64, end: f64, n: usize) -> Vec<f32> {
    let (s, e) = (start as f32, end as f32);
    if n == 1 {
        return vec![s];
    }
    let step = (e - s) / (n - 1) as f32;
    let half = n / 2;
    (0..n)
        .map(|i| if i < half { s + step * i as f32 } else { e - step * (n - i - 1) as f32 })
        .collect()
}

impl Pndm {
    pub fn new(cfg: &SchedulerConfig) -> Self {
        let n = cfg.num_train_timesteps;
        let betas: Vec<f32> = match (&cfg.trained_betas, cfg.beta_schedule.as_str()) {
            (Some(b), _) => b.iter().map(|&x| x as f32).collect(),
            (None, "scaled_linear") => linspace_f32(cfg.beta_start.sqrt(), cfg.beta_end.sqrt(), n)
                .into_iter()
                .map(|b| b * b)
                .collect(),
            (None, _) => linspace_f32(cfg.beta_start, cfg.beta_end, n),
        };
        let mut acc = 1f64;
        let alphas_cumprod: Vec<f32> = betas
            .iter()
            .map(|&b| {
                acc *= (1f32 - b) as f64;
                acc as f32
            })
            .collect();
        let final_alpha_cumprod = if cfg.set_alpha_to_one { 1.0 } else { alphas_cumprod[0] };
        Self {
            alphas_cumprod,
            final_alpha_cumprod,
            num_train_timesteps: n,
            steps_offset: cfg.steps_offset,
            ratio: 0,
            timesteps: vec![],
            ets: vec![],
            counter: 0,
            cur_sample: None,
        }
    }

    /// `set_timesteps(steps)`: resets the state and returns the `steps + 1` timesteps at which
    /// the UNet runs, e.g. `[981, 961, 961, 941, …, 21, 1]` for 50 steps.
    pub fn set_timesteps(&mut self, steps: usize) -> &[usize] {
        let steps = steps.clamp(1, self.num_train_timesteps);
        self.ratio = self.num_train_timesteps / steps;
        let base: Vec<usize> = (0..steps).map(|i| i * self.ratio + self.steps_offset).collect();
        let mut ts = base[..steps - 1].to_vec();
        if steps >= 2 {
            ts.push(base[steps - 2]);
        }
        ts.push(base[steps - 1]);
        ts.reverse();
        self.timesteps = ts;
        self.ets.clear();
        self.counter = 0;
        self.cur_sample = None;
        &self.timesteps
    }

    pub fn timesteps(&self) -> &[usize] {
        &self.timesteps
    }

    /// `step_plms(model_output, t, sample)`.
    pub fn step(&mut self, model_output: &Tensor, t: usize, sample: &Tensor) -> Result<StepOutput> {
        let ratio = self.ratio as i64;
        let (mut t, mut prev_t) = (t as i64, t as i64 - ratio);
        if self.counter != 1 {
            if self.ets.len() > 3 {
                self.ets.remove(0);
            }
            self.ets.push(model_output.clone());
        } else {
            prev_t = t;
            t += ratio;
        }
        let e = &self.ets;
        let k = e.len();
        let mut sample = sample.clone();
        let eps = if k == 1 && self.counter == 0 {
            self.cur_sample = Some(sample.clone());
            model_output.clone()
        } else if k == 1 && self.counter == 1 {
            if let Some(s) = self.cur_sample.take() {
                sample = s;
            }
            ((model_output + &e[0])? / 2.0)?
        } else if k == 2 {
            (((&e[1] * 3.0)? - &e[0])? / 2.0)?
        } else if k == 3 {
            ((((&e[2] * 23.0)? - (&e[1] * 16.0)?)? + (&e[0] * 5.0)?)? / 12.0)?
        } else {
            let sum = ((((&e[3] * 55.0)? - (&e[2] * 59.0)?)? + (&e[1] * 37.0)?)? - (&e[0] * 9.0)?)?;
            (sum * (1f32 / 24f32) as f64)?
        };
        let prev_sample = self.prev_sample(&sample, t, prev_t, &eps)?;
        self.counter += 1;
        Ok(StepOutput {
            prev_sample,
            eps_combined: eps,
            sample_used: sample,
            t_prev_t: (t, prev_t),
        })
    }

    /// `_get_prev_sample`: formula (9) of the PNDM paper with float32 coefficients.
    fn prev_sample(&self, x: &Tensor, t: i64, prev_t: i64, eps: &Tensor) -> Result<Tensor> {
        let a_t = self.alphas_cumprod[t as usize];
        let a_p = if prev_t >= 0 {
            self.alphas_cumprod[prev_t as usize]
        } else {
            self.final_alpha_cumprod
        };
        let (b_t, b_p) = (1f32 - a_t, 1f32 - a_p);
        let sample_coeff = (a_p / a_t).sqrt();
        let denom = a_t * b_p.sqrt() + (a_t * b_t * a_p).sqrt();
        let x = (x * sample_coeff as f64)?;
        let e = ((eps * (a_p - a_t) as f64)? / denom as f64)?;
        Ok((x - e)?)
    }
}
