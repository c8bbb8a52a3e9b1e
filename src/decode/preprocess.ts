// How a photo becomes a model's square input: the crop and the resize kernel. Its own file, free of
// sharp, because a model's config states it and the worker's side reads configs too.

export const CROP_POLICIES = ['none', 'central'] as const;
export type CropPolicy = (typeof CROP_POLICIES)[number];

/**
 * Resize kernels. 'lanczos3': sharp's default, antialiased (each output pixel filters the input
 * pixels it covers). 'bilinear': TensorFlow's resize_bilinear as TF-slim and the Object Detection
 * API evaluate with (align_corners and half_pixel_centers false): each output pixel interpolates
 * the four input pixels nearest to y * inHeight / outHeight, x * inWidth / outWidth, with no
 * antialiasing. It needs the whole decoded photo in memory (3 bytes a pixel) before resizing.
 */
export const RESIZE_KERNELS = ['lanczos3', 'bilinear'] as const;
export type ResizeKernel = (typeof RESIZE_KERNELS)[number];

/** How a photo becomes a model's square input; a catalog entry's setting (docs/accuracy.md measures each). */
export interface Preprocess {
  /**
   * 'none': the whole photo, stretched to the square (aspect ratio not kept), as Google's TFLite
   * and Coral examples feed these weights. 'central': first the central `fraction` of each side,
   * as TF-slim's ImageNet evaluation crops (tf.image.central_crop, 0.875).
   */
  crop: CropPolicy;
  /** 'central' only: the share of each side kept; default 0.875. */
  fraction?: number;
  kernel: ResizeKernel;
}

export const WHOLE_PHOTO: Preprocess = { crop: 'none', kernel: 'lanczos3' };
export const DEFAULT_CENTRAL_FRACTION = 0.875;
