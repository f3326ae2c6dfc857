import json
import os
import os.path as osp
import runpy

import numpy as np
import pytest
from mmcv.transforms import LoadImageFromFile
from pycocotools import mask as mask_utils

from mmeformer.demo import (SHAPES_CLASSES, SHAPES_PALETTE, SHAPES_SEG_CLASSES,
                            generate_shapes, is_shapes_dataset, shapes_meta)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SMALL = dict(num_train=6, num_val=3, img_size=128, min_size=16, max_size=40)


def read_tree(root):
    files = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = osp.join(folder, name)
            with open(path, 'rb') as f:
                files[osp.relpath(path, root)] = f.read()
    return files


@pytest.fixture(scope='module')
def shapes_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('data') / 'shapes')
    generate_shapes(root, seed=3, **SMALL)
    return root


def test_layout(shapes_root):
    assert is_shapes_dataset(shapes_root)
    assert is_shapes_dataset(
        shapes_root,
        shapes_meta(seed=3, max_shapes=4, max_rotation=15., **SMALL))
    assert not is_shapes_dataset(
        shapes_root,
        shapes_meta(seed=4, max_shapes=4, max_rotation=15., **SMALL))
    for split, folder, num in (('train', 'training', 6), ('val', 'validation',
                                                          3)):
        images = sorted(os.listdir(osp.join(shapes_root, 'images', folder)))
        maps = sorted(os.listdir(osp.join(shapes_root, 'annotations', folder)))
        assert len(images) == num
        assert [osp.splitext(n)[0]
                for n in images] == [osp.splitext(n)[0] for n in maps]
        assert osp.isfile(
            osp.join(shapes_root, 'annotations', f'instances_{split}.json'))


def test_deterministic(tmp_path, shapes_root):
    again = str(tmp_path / 'again')
    generate_shapes(again, seed=3, **SMALL)
    assert read_tree(again) == read_tree(shapes_root)

    other = str(tmp_path / 'other')
    generate_shapes(other, seed=4, **SMALL)
    assert read_tree(other) != read_tree(shapes_root)

    # The held-out split does not depend on the size of the training split.
    more_train = str(tmp_path / 'more_train')
    generate_shapes(more_train, seed=3, **dict(SMALL, num_train=9))
    val_files = {
        k: v
        for k, v in read_tree(shapes_root).items()
        if 'validation' in k or k.endswith('instances_val.json')
    }
    assert val_files and all(
        read_tree(more_train)[k] == v for k, v in val_files.items())


def test_overwrite_rules(tmp_path, shapes_root):
    with pytest.raises(FileExistsError, match='already holds'):
        generate_shapes(shapes_root, seed=3, **SMALL)
    foreign = tmp_path / 'foreign'
    foreign.mkdir()
    (foreign / 'keep.txt').write_text('not a shapes set')
    with pytest.raises(FileExistsError, match='not a shapes set'):
        generate_shapes(str(foreign), overwrite=True, **SMALL)
    assert (foreign / 'keep.txt').exists()

    copy = str(tmp_path / 'copy')
    generate_shapes(copy, seed=4, **SMALL)
    generate_shapes(copy, seed=3, overwrite=True, **SMALL)
    assert read_tree(copy) == read_tree(shapes_root)
    assert not [n for n in os.listdir(tmp_path) if '.tmp-' in n]


def test_coco_in_mmdet(shapes_root):
    from mmdet.datasets import CocoDataset
    from mmdet.datasets.transforms import LoadAnnotations, PackDetInputs

    dataset = CocoDataset(
        data_root=shapes_root,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='images/training/'),
        metainfo=dict(classes=SHAPES_CLASSES),
        pipeline=[
            LoadImageFromFile(),
            LoadAnnotations(with_bbox=True, with_mask=True),
            PackDetInputs()
        ])
    assert len(dataset) == 6
    with open(osp.join(shapes_root, 'annotations',
                       'instances_train.json')) as f:
        coco = json.load(f)
    assert [c['name'] for c in coco['categories']] == list(SHAPES_CLASSES)
    labels = set()
    for i in range(len(dataset)):
        sample = dataset[i]
        assert tuple(sample['inputs'].shape) == (3, 128, 128)
        gt = sample['data_samples'].gt_instances
        assert len(gt) >= 1
        masks = gt.masks.to_ndarray()
        for box, mask in zip(gt.bboxes.numpy(), masks):
            # The box is the mask's tight box, in mmdet's x1, y1, x2, y2.
            ys, xs = np.nonzero(mask)
            np.testing.assert_array_equal(
                box,
                [xs.min(), ys.min(),
                 xs.max() + 1, ys.max() + 1])
        labels.update(gt.labels.tolist())
    assert labels <= {0, 1, 2}
    for ann in coco['annotations']:
        assert ann['iscrowd'] == 0
        rle = mask_utils.frPyObjects(ann['segmentation'], 128, 128)
        assert ann['area'] == float(mask_utils.area(mask_utils.merge(rle)))


def test_label_maps_match_coco_masks(shapes_root):
    import cv2
    with open(osp.join(shapes_root, 'annotations', 'instances_val.json')) as f:
        coco = json.load(f)
    for image in coco['images']:
        stem = osp.splitext(image['file_name'])[0]
        label_map = cv2.imread(
            osp.join(shapes_root, 'annotations', 'validation', stem + '.png'),
            cv2.IMREAD_UNCHANGED)
        expected = np.zeros((128, 128), np.uint8)
        for ann in coco['annotations']:
            if ann['image_id'] == image['id']:
                rle = mask_utils.frPyObjects(ann['segmentation'], 128, 128)
                mask = mask_utils.decode(mask_utils.merge(rle)).astype(bool)
                assert not expected[mask].any(), 'shapes must not overlap'
                expected[mask] = ann['category_id']
        np.testing.assert_array_equal(label_map, expected)


@pytest.mark.parametrize('reduce_zero_label', [False, True])
def test_label_maps_in_mmseg(shapes_root, reduce_zero_label):
    from mmseg.datasets import BaseSegDataset
    from mmseg.datasets.transforms import LoadAnnotations, PackSegInputs

    classes = SHAPES_CLASSES if reduce_zero_label else SHAPES_SEG_CLASSES
    dataset = BaseSegDataset(
        data_root=shapes_root,
        data_prefix=dict(
            img_path='images/validation',
            seg_map_path='annotations/validation'),
        img_suffix='.jpg',
        seg_map_suffix='.png',
        metainfo=dict(classes=classes),
        reduce_zero_label=reduce_zero_label,
        pipeline=[LoadImageFromFile(),
                  LoadAnnotations(),
                  PackSegInputs()])
    assert len(dataset) == 3
    for i in range(len(dataset)):
        seg = dataset[i]['data_samples'].gt_sem_seg.data.numpy()
        values = set(np.unique(seg).tolist())
        if reduce_zero_label:
            # ADE20K's reading: background is ignored, shapes are 0..2.
            assert 255 in values and values <= {0, 1, 2, 255}
        else:
            assert 0 in values and values <= {0, 1, 2, 3}
        assert len(values) >= 2


def test_make_shapes_tool(tmp_path, capsys):
    tool = osp.join(REPO, 'tools', 'dataset_converters', 'make_shapes.py')
    main = runpy.run_path(tool)['main']
    with pytest.raises(SystemExit):
        main(['--help'])
    out = capsys.readouterr().out
    assert 'COCO' in out and 'ADE20K' in out
    root = str(tmp_path / 'shapes')
    main([
        '--out-dir', root, '--num-train', '2', '--num-val', '1', '--img-size',
        '96', '--max-size', '32'
    ])
    assert 'Wrote 2 training and 1 validation images' in capsys.readouterr(
    ).out
    assert is_shapes_dataset(
        root,
        shapes_meta(
            num_train=2,
            num_val=1,
            img_size=96,
            seed=0,
            min_size=24,
            max_size=32,
            max_shapes=4,
            max_rotation=15.))


def test_each_class_has_its_colour_family(shapes_root):
    import cv2
    with open(osp.join(shapes_root, 'annotations',
                       'instances_train.json')) as f:
        coco = json.load(f)
    files = {image['id']: image['file_name'] for image in coco['images']}
    palette = np.array(SHAPES_PALETTE, dtype=np.float32)
    for ann in coco['annotations']:
        bgr = cv2.imread(
            osp.join(shapes_root, 'images', 'training',
                     files[ann['image_id']]))
        rle = mask_utils.frPyObjects(ann['segmentation'], 128, 128)
        inside = mask_utils.decode(mask_utils.merge(rle)).astype(bool)
        mean_rgb = bgr[..., ::-1][inside].mean(0)
        # Jittered by up to 40 per channel (plus pixel noise and JPEG), a
        # shape stays nearest to its own class colour.
        distances = np.abs(palette - mean_rgb).max(1)
        assert distances.argmin() == ann['category_id'] - 1
        assert distances.min() < 50
        # The background is grey: its channels agree on average.
        stem = osp.splitext(files[ann['image_id']])[0]
        label_map = cv2.imread(
            osp.join(shapes_root, 'annotations', 'training', stem + '.png'),
            cv2.IMREAD_UNCHANGED)
        background = bgr[label_map == 0].astype(np.float32).mean(0)
        assert np.ptp(background) < 5


def test_classification_set_in_imagenet_layout(tmp_path, capsys):
    """make_shapes.py --classification writes train/val/test folders of one
    sub-folder per class, which MMPretrain reads as those classes."""
    from mmpretrain.datasets import CustomDataset

    from mmeformer.demo.shapes import CLS_CLASSES, generate_shape_classes
    tool = osp.join(REPO, 'tools', 'dataset_converters', 'make_shapes.py')
    root = str(tmp_path / 'shapes_cls')
    runpy.run_path(tool)['main']([
        '--classification', '--out-dir', root, '--num-train', '2', '--num-val',
        '1', '--num-test', '1', '--img-size', '48'
    ])
    assert (f'Wrote 2, 1 and 1 images per class ({len(CLS_CLASSES)} '
            'classes)') in capsys.readouterr().out
    assert len(CLS_CLASSES) == 20 == len(set(CLS_CLASSES))
    with open(osp.join(root, 'meta.json')) as f:
        meta = json.load(f)
    assert meta['classes'] == list(CLS_CLASSES)
    assert sorted(os.listdir(root)) == ['meta.json', 'test', 'train', 'val']
    loader = LoadImageFromFile()
    for split, count in (('train', 2), ('val', 1), ('test', 1)):
        assert sorted(os.listdir(osp.join(root, split))) == list(CLS_CLASSES)
        dataset = CustomDataset(
            data_root=root, data_prefix=split, lazy_init=False)
        assert tuple(dataset.CLASSES) == CLS_CLASSES
        assert len(dataset) == count * len(CLS_CLASSES)
        labels = [
            dataset.get_data_info(i)['gt_label'] for i in range(len(dataset))
        ]
        assert sorted(labels) == sorted(list(range(len(CLS_CLASSES))) * count)
        info = dataset.get_data_info(0)
        image = loader(dict(img_path=info['img_path']))['img']
        assert image.shape == (48, 48, 3)
        assert osp.basename(osp.dirname(
            info['img_path'])) == CLS_CLASSES[info['gt_label']]

    # The same set drawn again by the function is byte for byte the same.
    again = str(tmp_path / 'again')
    generate_shape_classes(
        again, num_train=2, num_val=1, num_test=1, img_size=48)
    assert read_tree(again) == read_tree(root)
