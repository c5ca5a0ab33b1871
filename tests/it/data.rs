//! Data: decoding of odd formats, bad files skipped with reasons, the stratified split, the loader.

use crate::common;

use std::io::Cursor;
use std::path::Path;

use fastvision::data::decode::{decode_rgb, decode_rgb_bytes};
use fastvision::data::split::stratified_split;
use fastvision::data::{DataLoader, ImageFolder, Item, ItemTransform, Normalize, SplitConfig};
use image::{DynamicImage, ImageFormat, Luma, Rgb, Rgba};

fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut buf = Cursor::new(Vec::new());
    img.write_to(&mut buf, format).unwrap();
    buf.into_inner()
}

fn gradient(w: u32, h: u32) -> image::RgbImage {
    image::RgbImage::from_fn(w, h, |x, y| Rgb([(x * 7) as u8, (y * 5) as u8, 100]))
}

#[test]
fn every_supported_format_decodes_to_rgb8() {
    let rgb = DynamicImage::ImageRgb8(gradient(12, 8));
    for format in [
        ImageFormat::Jpeg,
        ImageFormat::Png,
        ImageFormat::WebP,
        ImageFormat::Bmp,
        ImageFormat::Gif,
        ImageFormat::Tiff,
    ] {
        let img =
            decode_rgb_bytes(&encode(&rgb, format)).unwrap_or_else(|e| panic!("{format:?}: {e}"));
        assert_eq!(img.dimensions(), (12, 8), "{format:?}");
        if format != ImageFormat::Jpeg && format != ImageFormat::Gif {
            assert_eq!(
                img.get_pixel(3, 2),
                rgb.as_rgb8().unwrap().get_pixel(3, 2),
                "{format:?} is lossless"
            );
        }
    }
    let gray16 = DynamicImage::ImageLuma16(image::ImageBuffer::from_fn(5, 4, |x, _| {
        Luma([x as u16 * 10_000])
    }));
    let img = decode_rgb_bytes(&encode(&gray16, ImageFormat::Png)).unwrap();
    assert_eq!(
        img.get_pixel(4, 0),
        &Rgb([156, 156, 156]),
        "16-bit gray scales to 8-bit RGB"
    );
    let rgba = DynamicImage::ImageRgba8(image::ImageBuffer::from_fn(4, 4, |_, _| {
        Rgba([10, 20, 30, 0])
    }));
    assert_eq!(
        decode_rgb_bytes(&encode(&rgba, ImageFormat::Png))
            .unwrap()
            .get_pixel(0, 0),
        &Rgb([10, 20, 30])
    );
}

#[test]
fn gif_gives_its_first_frame() {
    use image::codecs::gif::GifEncoder;
    use image::{Delay, Frame};
    let mut buf = Vec::new();
    {
        let mut enc = GifEncoder::new(&mut buf);
        for v in [200u8, 20] {
            let frame = image::RgbaImage::from_pixel(6, 6, Rgba([v, v, v, 255]));
            enc.encode_frame(Frame::from_parts(
                frame,
                0,
                0,
                Delay::from_numer_denom_ms(10, 1),
            ))
            .unwrap();
        }
    }
    let img = decode_rgb_bytes(&buf).unwrap();
    assert!(
        img.get_pixel(2, 2)[0] > 150,
        "first frame is the bright one"
    );
}

/// A JPEG with an EXIF APP1 segment saying "rotate 90° clockwise" (orientation 6).
fn jpeg_with_orientation(w: u32, h: u32, orientation: u16) -> Vec<u8> {
    let jpeg = encode(&DynamicImage::ImageRgb8(gradient(w, h)), ImageFormat::Jpeg);
    let mut tiff = b"MM\0*\0\0\0\x08\0\x01".to_vec();
    tiff.extend([0x01, 0x12, 0, 3, 0, 0, 0, 1]);
    tiff.extend(orientation.to_be_bytes());
    tiff.extend([0, 0, 0, 0, 0, 0]);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend(tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend([0xFF, 0xE1]);
    out.extend(((app1.len() + 2) as u16).to_be_bytes());
    out.extend(app1);
    out.extend(&jpeg[2..]);
    out
}

#[test]
fn exif_orientation_is_applied() {
    let img = decode_rgb_bytes(&jpeg_with_orientation(16, 8, 6)).unwrap();
    assert_eq!(img.dimensions(), (8, 16), "rotated upright");
    let img = decode_rgb_bytes(&jpeg_with_orientation(16, 8, 1)).unwrap();
    assert_eq!(img.dimensions(), (16, 8));
}

/// A PNG whose header claims `w`×`h` pixels, with no real pixel data.
fn png_header_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let chunk = |kind: &[u8], body: &[u8]| {
        let mut c = (body.len() as u32).to_be_bytes().to_vec();
        let mut crc_in = kind.to_vec();
        crc_in.extend(body);
        c.extend(&crc_in);
        c.extend(crc32(&crc_in).to_be_bytes());
        c
    };
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(chunk(b"IHDR", &ihdr));
    out.extend(chunk(b"IEND", b""));
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn a_decompression_bomb_is_refused_before_allocation() {
    let err = decode_rgb_bytes(&png_header_claiming(100_000, 100_000)).unwrap_err();
    assert!(err.contains("too large"), "{err}");
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn bad_files_are_skipped_with_reasons_and_good_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    common::tiny_dataset(root, 2, 4, 2);
    let good_png = encode(&DynamicImage::ImageRgb8(gradient(20, 20)), ImageFormat::Png);
    let class = root.join("train/ankle-boot");
    write(&class.join("empty.png"), b"");
    write(
        &class.join("truncated.png"),
        &good_png[..good_png.len() / 2],
    );
    write(&class.join("notes.jpg"), b"this is not an image");
    write(
        &class.join("bomb.png"),
        &png_header_claiming(100_000, 100_000),
    );
    write(&class.join(".hidden.png"), &good_png);
    write(&class.join("readme.txt"), b"hello");
    write(&class.join("sub dir/ok é.png"), &good_png);

    let data = ImageFolder::from_folder(root, SplitConfig::default()).unwrap();
    let reason = |name: &str| {
        data.skipped
            .iter()
            .find(|s| s.path.file_name().unwrap() == name)
            .map(|s| s.reason.clone())
            .unwrap_or_else(|| panic!("{name} not reported"))
    };
    assert!(reason("empty.png").contains("empty"));
    assert!(
        reason("truncated.png").contains("corrupt"),
        "{}",
        reason("truncated.png")
    );
    assert!(reason("notes.jpg").contains("not an image"));
    assert!(reason("bomb.png").contains("too large"));
    assert!(reason("readme.txt").contains("extension"));
    assert!(
        !data
            .skipped
            .iter()
            .any(|s| s.path.to_string_lossy().contains(".hidden")),
        "hidden files are ignored silently"
    );
    assert_eq!(
        data.train.len(),
        4 + 4 + 1,
        "4 per class plus the good nested file"
    );
    assert_eq!(data.valid.len(), 4);
    assert_eq!(data.vocab, vec!["ankle-boot", "bag"]);
}

#[test]
fn an_empty_class_folder_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    common::tiny_dataset(dir.path(), 2, 3, 1);
    let empty = dir.path().join("train/zzz-empty");
    std::fs::create_dir_all(&empty).unwrap();
    let err = ImageFolder::from_folder(dir.path(), SplitConfig::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("zzz-empty") && err.contains("no usable image"),
        "{err}"
    );
}

#[test]
fn the_split_is_stratified_and_reproducible() {
    let items: Vec<Item> = (0..100)
        .map(|i| Item {
            path: format!("f{i:03}.png").into(),
            label: usize::from(i >= 80),
        })
        .collect();
    let (train, valid) = stratified_split(items.clone(), 0.25, 7);
    assert_eq!(valid.iter().filter(|i| i.label == 0).count(), 20);
    assert_eq!(valid.iter().filter(|i| i.label == 1).count(), 5);
    assert_eq!(train.len() + valid.len(), 100);
    let (train2, valid2) = stratified_split(items.clone(), 0.25, 7);
    assert_eq!((train, valid.clone()), (train2, valid2));
    let (_, valid3) = stratified_split(items, 0.25, 8);
    assert_ne!(valid, valid3, "another seed gives another split");
}

#[test]
fn a_folder_without_valid_is_split_by_valid_pct() {
    let dir = tempfile::tempdir().unwrap();
    common::tiny_dataset(dir.path(), 3, 10, 0);
    let train_dir = dir.path().join("train");
    let data = ImageFolder::from_folder(
        &train_dir,
        SplitConfig {
            valid_pct: 0.2,
            seed: 1,
        },
    )
    .unwrap();
    assert_eq!((data.train.len(), data.valid.len()), (24, 6));
    assert_eq!(data.min_side, 28);
}

#[test]
fn the_loader_is_deterministic_and_drops_the_last_partial_training_batch() {
    let dir = tempfile::tempdir().unwrap();
    common::tiny_dataset(dir.path(), 2, 10, 5);
    let data = ImageFolder::from_folder(dir.path(), SplitConfig::default()).unwrap();
    let train = DataLoader::new(
        data.train.clone(),
        ItemTransform::train(32),
        Normalize::IMAGENET,
        6,
        true,
        3,
    );
    let batches: Vec<_> = train.iter(0).collect();
    assert_eq!(batches.len(), 3);
    assert!(
        batches
            .iter()
            .all(|b| b.len() == 6 && b.images.len() == 6 * 3 * 32 * 32)
    );
    let again: Vec<_> = train.iter(0).collect();
    assert_eq!(
        batches[1].images, again[1].images,
        "same seed and epoch, same pixels"
    );
    let other: Vec<_> = train.iter(1).collect();
    assert_ne!(
        batches[0].indices, other[0].indices,
        "each epoch reshuffles"
    );
    let valid = DataLoader::new(
        data.valid,
        ItemTransform::valid(32),
        Normalize::IMAGENET,
        4,
        false,
        3,
    );
    assert_eq!(
        valid.iter(0).map(|b| b.len()).collect::<Vec<_>>(),
        vec![4, 4, 2]
    );
    let mean: f32 = batches[0].images.iter().sum::<f32>() / batches[0].images.len() as f32;
    assert!(mean.abs() < 3.0, "normalised values, mean {mean}");
}

#[test]
fn decode_rgb_names_unreadable_files() {
    let err = decode_rgb(Path::new("/definitely/not/here.png")).unwrap_err();
    assert!(err.contains("unreadable"), "{err}");
}
