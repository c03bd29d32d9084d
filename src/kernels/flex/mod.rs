//! The kernels as operations of the flex backend: backend extensions with a flex
//! implementation and an autodiff implementation whose backward step runs the same kernels.
//! Float types other than `f32` and `f64` fall back to flex's own operations.

#[cfg(feature = "models")]
pub(crate) mod batch_norm;
#[cfg(feature = "models")]
pub(crate) mod conv;
pub(crate) mod log_sum_exp;

use burn::backend::flex::{FlexTensor, Layout};
use burn::tensor::{Bytes, DType, Shape};

use super::Element;

/// `f32` / `f64` access to flex tensors.
pub(crate) trait FlexElement: Element {
    /// The dtype of the type.
    #[cfg_attr(not(feature = "models"), allow(dead_code))]
    const DTYPE: DType;

    /// The values of a contiguous tensor of this type.
    fn values(tensor: &FlexTensor) -> Option<&[Self]>;

    /// A contiguous tensor holding `values`.
    fn tensor(values: Vec<Self>, shape: impl Into<Shape>) -> FlexTensor;
}

macro_rules! flex_element {
    ($ty:ty, $dtype:expr) => {
        impl FlexElement for $ty {
            const DTYPE: DType = $dtype;

            fn values(tensor: &FlexTensor) -> Option<&[Self]> {
                tensor.as_slice::<$ty>()
            }

            fn tensor(values: Vec<Self>, shape: impl Into<Shape>) -> FlexTensor {
                FlexTensor::new(
                    Bytes::from_elems(values),
                    Layout::contiguous(shape.into()),
                    Self::DTYPE,
                )
            }
        }
    };
}

flex_element!(f32, DType::F32);
flex_element!(f64, DType::F64);
