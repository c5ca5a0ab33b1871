//! ONNX export of a trained classifier (ResNets and EfficientNet-Lite0, opset 13, dynamic batch),
//! written with `prost` from the few ONNX message definitions it needs. BatchNorm is folded into
//! the preceding convolution, the head's BatchNorms into the following linear layers, dropout is
//! the identity: the graph computes the eval-mode logits.

use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, Linear, PaddingConfig2d};
use burn::tensor::Tensor;
use prost::Message;

use crate::error::{Error, Result};
use crate::infer::bundle::BundleConfig;
use crate::models::efficientnet_lite::EfficientNetLite;
use crate::models::resnet::ResNet;
use crate::models::{Body, ImageClassifier};
use crate::ops::{bn_scale_shift, fold_bn};

/// The ONNX protobuf messages used here (field numbers as in onnx.proto).
mod proto {
    /// A model: IR version, opsets, graph.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ModelProto {
        #[prost(int64, tag = "1")]
        pub ir_version: i64,
        #[prost(string, tag = "2")]
        pub producer_name: String,
        #[prost(string, tag = "3")]
        pub producer_version: String,
        #[prost(message, optional, tag = "7")]
        pub graph: Option<GraphProto>,
        #[prost(message, repeated, tag = "8")]
        pub opset_import: Vec<OperatorSetIdProto>,
        #[prost(message, repeated, tag = "14")]
        pub metadata_props: Vec<StringStringEntryProto>,
    }
    /// An operator set and its version.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct OperatorSetIdProto {
        #[prost(string, tag = "1")]
        pub domain: String,
        #[prost(int64, tag = "2")]
        pub version: i64,
    }
    /// A key/value pair.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StringStringEntryProto {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }
    /// The computation graph.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GraphProto {
        #[prost(message, repeated, tag = "1")]
        pub node: Vec<NodeProto>,
        #[prost(string, tag = "2")]
        pub name: String,
        #[prost(message, repeated, tag = "5")]
        pub initializer: Vec<TensorProto>,
        #[prost(message, repeated, tag = "11")]
        pub input: Vec<ValueInfoProto>,
        #[prost(message, repeated, tag = "12")]
        pub output: Vec<ValueInfoProto>,
    }
    /// One operator application.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NodeProto {
        #[prost(string, repeated, tag = "1")]
        pub input: Vec<String>,
        #[prost(string, repeated, tag = "2")]
        pub output: Vec<String>,
        #[prost(string, tag = "3")]
        pub name: String,
        #[prost(string, tag = "4")]
        pub op_type: String,
        #[prost(message, repeated, tag = "5")]
        pub attribute: Vec<AttributeProto>,
    }
    /// An operator attribute (type 1 float, 2 int, 3 string, 7 ints).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AttributeProto {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(float, tag = "2")]
        pub f: f32,
        #[prost(int64, tag = "3")]
        pub i: i64,
        #[prost(bytes = "vec", tag = "4")]
        pub s: Vec<u8>,
        #[prost(int64, repeated, tag = "8")]
        pub ints: Vec<i64>,
        #[prost(int32, tag = "20")]
        pub r#type: i32,
    }
    /// A constant tensor (data type 1 = float), little-endian raw data.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorProto {
        #[prost(int64, repeated, tag = "1")]
        pub dims: Vec<i64>,
        #[prost(int32, tag = "2")]
        pub data_type: i32,
        #[prost(string, tag = "8")]
        pub name: String,
        #[prost(bytes = "vec", tag = "9")]
        pub raw_data: Vec<u8>,
    }
    /// A named, typed graph input or output.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ValueInfoProto {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "2")]
        pub r#type: Option<TypeProto>,
    }
    /// A value's type: here always a tensor.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TypeProto {
        #[prost(message, optional, tag = "1")]
        pub tensor_type: Option<TensorTypeProto>,
    }
    /// A tensor type: element type and shape.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorTypeProto {
        #[prost(int32, tag = "1")]
        pub elem_type: i32,
        #[prost(message, optional, tag = "2")]
        pub shape: Option<TensorShapeProto>,
    }
    /// A shape of fixed or named (dynamic) dimensions.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorShapeProto {
        #[prost(message, repeated, tag = "1")]
        pub dim: Vec<Dimension>,
    }
    /// One dimension: a value or a parameter name.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Dimension {
        #[prost(int64, optional, tag = "1")]
        pub dim_value: Option<i64>,
        #[prost(string, optional, tag = "2")]
        pub dim_param: Option<String>,
    }
}

use proto::*;

const FLOAT: i32 = 1;

fn ints(name: &str, v: &[usize]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        ints: v.iter().map(|&x| x as i64).collect(),
        r#type: 7,
        ..Default::default()
    }
}

fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i: v,
        r#type: 2,
        ..Default::default()
    }
}

fn string(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        s: v.as_bytes().to_vec(),
        r#type: 3,
        ..Default::default()
    }
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap_or_default()
}

/// What a convolution pads: explicit (top, left, bottom, right), or TF "SAME" computed at run time.
enum Pads {
    Explicit([usize; 4]),
    SameUpper,
}

/// Builds the graph node by node, naming every value.
#[derive(Default)]
struct Graph {
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    count: usize,
}

impl Graph {
    fn name(&mut self, what: &str) -> String {
        self.count += 1;
        format!("{what}_{}", self.count)
    }

    fn constant(&mut self, what: &str, dims: &[usize], data: &[f32]) -> String {
        let name = self.name(what);
        self.inits.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: FLOAT,
            name: name.clone(),
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        });
        name
    }

    fn op(&mut self, op: &str, inputs: &[&str], attribute: Vec<AttributeProto>) -> String {
        let out = self.name(&op.to_lowercase());
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.clone()],
            name: out.clone(),
            op_type: op.into(),
            attribute,
        });
        out
    }

    /// `act(bn(conv(x)))` as one Conv with the BatchNorm folded in, then the activation.
    fn conv_bn(
        &mut self,
        x: &str,
        conv: &Conv2d,
        bn: &BatchNorm,
        pads: Pads,
        act: Option<f32>,
    ) -> String {
        let (w, b) = fold_bn(conv, bn);
        let dims = w.dims();
        let w = self.constant("w", &dims, &values(w));
        let b = self.constant("b", &[dims[0]], &values(b));
        let mut attrs = vec![
            ints("kernel_shape", &conv.kernel_size),
            ints("strides", &conv.stride),
            ints("dilations", &conv.dilation),
            int("group", conv.groups as i64),
        ];
        match pads {
            Pads::Explicit(p) => attrs.push(ints("pads", &p)),
            Pads::SameUpper => attrs.push(string("auto_pad", "SAME_UPPER")),
        }
        let y = self.op("Conv", &[x, &w, &b], attrs);
        match act {
            None => y,
            Some(f32::INFINITY) => self.op("Relu", &[&y], vec![]),
            Some(max) => {
                let lo = self.constant("min", &[], &[0.0]);
                let hi = self.constant("max", &[], &[max]);
                self.op("Clip", &[&y, &lo, &hi], vec![])
            }
        }
    }

    /// `linear(bn(x))` as one Gemm: `x·(diag(s)·W) + t·W` with `s = γ/σ`, `t = β − μ·s`.
    fn bn_linear(&mut self, x: &str, bn: &BatchNorm, lin: &Linear) -> String {
        let w = lin.weight.val(); // [in, out]
        let (scale, shift) = bn_scale_shift(bn, &w.device());
        let [n_in, n_out] = w.dims();
        let folded = w.clone() * scale.reshape([n_in, 1]);
        let mut bias = shift.reshape([1, n_in]).matmul(w).reshape([n_out]);
        if let Some(b) = &lin.bias {
            bias = bias + b.val();
        }
        let w = self.constant("w", &[n_in, n_out], &values(folded));
        let b = self.constant("b", &[n_out], &values(bias));
        self.op("Gemm", &[x, &w, &b], vec![])
    }
}

fn explicit(conv: &Conv2d) -> Result<Pads> {
    match conv.padding {
        PaddingConfig2d::Explicit(top, left, bottom, right) => {
            Ok(Pads::Explicit([top, left, bottom, right]))
        }
        PaddingConfig2d::Valid => Ok(Pads::Explicit([0, 0, 0, 0])),
        PaddingConfig2d::Same => Err(Error::Config(
            "ONNX export: `Same` padding is not mapped".into(),
        )),
    }
}

fn resnet(g: &mut Graph, x: &str, m: &ResNet) -> Result<String> {
    let relu = Some(f32::INFINITY);
    let x = g.conv_bn(x, &m.conv1, &m.bn1, explicit(&m.conv1)?, relu);
    let mut x = g.op(
        "MaxPool",
        &[&x],
        vec![
            ints("kernel_shape", &[3, 3]),
            ints("strides", &[2, 2]),
            ints("pads", &[1, 1, 1, 1]),
        ],
    );
    for block in m
        .layer1
        .iter()
        .chain(&m.layer2)
        .chain(&m.layer3)
        .chain(&m.layer4)
    {
        let identity = match &block.downsample {
            Some(d) => g.conv_bn(&x, &d.conv, &d.bn, explicit(&d.conv)?, None),
            None => x.clone(),
        };
        let out = g.conv_bn(&x, &block.conv1, &block.bn1, explicit(&block.conv1)?, relu);
        let out = match (&block.conv3, &block.bn3) {
            (Some(c3), Some(b3)) => {
                let mid = g.conv_bn(
                    &out,
                    &block.conv2,
                    &block.bn2,
                    explicit(&block.conv2)?,
                    relu,
                );
                g.conv_bn(&mid, c3, b3, explicit(c3)?, None)
            }
            _ => g.conv_bn(
                &out,
                &block.conv2,
                &block.bn2,
                explicit(&block.conv2)?,
                None,
            ),
        };
        let sum = g.op("Add", &[&out, &identity], vec![]);
        x = g.op("Relu", &[&sum], vec![]);
    }
    Ok(x)
}

fn efficientnet(g: &mut Graph, x: &str, m: &EfficientNetLite) -> Result<String> {
    let relu6 = Some(6.0);
    let mut x = g.conv_bn(x, &m.conv_stem, &m.bn0, Pads::SameUpper, relu6);
    for block in &m.blocks {
        let input = x.clone();
        if let (Some(c), Some(b)) = (&block.expand_conv, &block.bn0) {
            x = g.conv_bn(&x, c, b, explicit(c)?, relu6);
        }
        x = g.conv_bn(
            &x,
            &block.depthwise_conv,
            &block.bn1,
            Pads::SameUpper,
            relu6,
        );
        x = g.conv_bn(
            &x,
            &block.project_conv,
            &block.bn2,
            explicit(&block.project_conv)?,
            None,
        );
        if block.residual {
            x = g.op("Add", &[&x, &input], vec![]);
        }
    }
    Ok(g.conv_bn(&x, &m.conv_head, &m.bn1, explicit(&m.conv_head)?, relu6))
}

/// The ONNX bytes of `model`: input `images` `[batch, 3, size, size]` (normalised as the
/// bundle says), output `logits` `[batch, classes]`; `batch` is dynamic.
pub fn onnx_model(model: &ImageClassifier, config: &BundleConfig) -> Result<Vec<u8>> {
    let mut g = Graph::default();
    let features = match &model.body {
        Body::ResNet(m) => resnet(&mut g, "images", m)?,
        Body::EfficientNetLite(m) => efficientnet(&mut g, "images", m)?,
        Body::Inception(_) => {
            return Err(Error::Config(
                "ONNX export of inception_v3 is not supported yet (export it as safetensors)"
                    .into(),
            ));
        }
    };
    // fastai's concat pool: [max, avg] over space, flattened.
    let max = g.op("GlobalMaxPool", &[&features], vec![]);
    let avg = g.op("GlobalAveragePool", &[&features], vec![]);
    let cat = g.op("Concat", &[&max, &avg], vec![int("axis", 1)]);
    let flat = g.op("Flatten", &[&cat], vec![int("axis", 1)]);
    let hidden = g.bn_linear(&flat, &model.head.bn1, &model.head.lin1);
    let hidden = g.op("Relu", &[&hidden], vec![]);
    let logits = g.bn_linear(&hidden, &model.head.bn2, &model.head.lin2);
    g.nodes.push(NodeProto {
        input: vec![logits],
        output: vec!["logits".into()],
        name: "logits".into(),
        op_type: "Identity".into(),
        attribute: vec![],
    });
    let dim = |v: Option<i64>, p: Option<&str>| Dimension {
        dim_value: v,
        dim_param: p.map(str::to_string),
    };
    let value = |name: &str, dims: Vec<Dimension>| ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: FLOAT,
                shape: Some(TensorShapeProto { dim: dims }),
            }),
        }),
    };
    let size = config.size as i64;
    let model = ModelProto {
        ir_version: 8,
        producer_name: "fastvision".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(GraphProto {
            node: g.nodes,
            name: "fastvision".into(),
            initializer: g.inits,
            input: vec![value(
                "images",
                vec![
                    dim(None, Some("batch")),
                    dim(Some(3), None),
                    dim(Some(size), None),
                    dim(Some(size), None),
                ],
            )],
            output: vec![value(
                "logits",
                vec![
                    dim(None, Some("batch")),
                    dim(Some(config.vocab.len() as i64), None),
                ],
            )],
        }),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        metadata_props: vec![StringStringEntryProto {
            key: crate::infer::bundle::EXPORT_CONFIG_KEY.into(),
            value: serde_json::to_string(config).unwrap_or_default(),
        }],
    };
    Ok(model.encode_to_vec())
}
