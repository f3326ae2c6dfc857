import pytest
import torch
import torch.nn.functional as F
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample

from mmeformer.models import EfficientFormerClsHead


@pytest.fixture
def head():
    torch.manual_seed(0)
    head = EfficientFormerClsHead(num_classes=5, in_channels=8)
    head.init_weights()
    return head


def logits(head, feats):
    return head.head(feats), head.dist_head(feats)


def test_inference_averages_the_two_heads(head):
    feats = torch.randn(3, 8)
    cls, dist = logits(head, feats)
    torch.testing.assert_close(head((feats, )), (cls + dist) / 2)
    samples = head.predict((feats, ))
    scores = torch.stack([s.pred_score for s in samples])
    torch.testing.assert_close(scores, F.softmax((cls + dist) / 2, dim=1))
    assert [int(s.pred_label)
            for s in samples] == ((cls + dist).argmax(1).tolist())


def test_loss_with_hard_labels_is_the_mean_of_both_heads(head):
    feats = torch.randn(4, 8)
    labels = torch.tensor([0, 3, 1, 4])
    samples = [DataSample().set_gt_label(int(label)) for label in labels]
    loss = head.loss((feats, ), samples)['loss']
    cls, dist = logits(head, feats)
    expected = (F.cross_entropy(cls, labels) +
                F.cross_entropy(dist, labels)) / 2
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert head.head.weight.grad.abs().sum() > 0
    assert head.dist_head.weight.grad.abs().sum() > 0


def test_loss_with_soft_labels(head):
    feats = torch.randn(4, 8)
    scores = torch.softmax(torch.randn(4, 5), dim=1)
    samples = [DataSample().set_gt_score(score) for score in scores]
    loss = head.loss((feats, ), samples)['loss']
    cls, dist = logits(head, feats)

    def soft_ce(x):
        return -(scores * F.log_softmax(x, dim=1)).sum(1).mean()

    torch.testing.assert_close(loss, (soft_ce(cls) + soft_ce(dist)) / 2)


def test_without_distillation_there_is_one_head():
    head = EfficientFormerClsHead(
        num_classes=5, in_channels=8, distillation=False)
    assert head.dist_head is None
    feats = torch.randn(2, 8)
    torch.testing.assert_close(head((feats, )), head.head(feats))


def test_training_accuracy_needs_hard_labels():
    head = EfficientFormerClsHead(
        num_classes=5, in_channels=8, cal_acc=True, topk=(1, 2))
    feats = torch.randn(4, 8)
    hard = [DataSample().set_gt_label(i) for i in range(4)]
    assert set(head.loss(
        (feats, ), hard)) == {'loss', 'accuracy_top-1', 'accuracy_top-2'}
    soft = [DataSample().set_gt_score(torch.full((5, ), .2))] * 4
    with pytest.raises(ValueError, match='hard labels'):
        head.loss((feats, ), soft)


def test_bad_num_classes():
    with pytest.raises(ValueError, match='num_classes'):
        EfficientFormerClsHead(num_classes=0, in_channels=8)


def test_classifier_trains_with_mixup_and_cutmix(build_classifier, tiny_archs):
    from mmpretrain.registry import MODELS
    model = build_classifier(
        'EfficientFormer', tiny_archs['EfficientFormer'], num_classes=4)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model.data_preprocessor = MODELS.build(
            dict(
                type='ClsDataPreprocessor',
                num_classes=4,
                batch_augments=dict(augments=[
                    dict(type='Mixup', alpha=0.8),
                    dict(type='CutMix', alpha=1.0)
                ])))
    data = dict(
        inputs=[torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)] * 4,
        data_samples=[DataSample().set_gt_label(i) for i in range(4)])
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    before = model.head.dist_head.weight.detach().clone()
    log_vars = model.train_step(data, wrapper)
    assert torch.isfinite(log_vars['loss'])
    assert not torch.equal(model.head.dist_head.weight, before)
    model.eval()
    with torch.no_grad():
        preds = model.val_step(data)
    assert len(preds) == 4 and preds[0].pred_score.shape == (4, )
