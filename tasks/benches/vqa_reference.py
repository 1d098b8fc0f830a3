"""Reference timing for `cargo bench -p tasks --bench vqa`.

The evaluate loops below are transcriptions of
  * GT-Vision-Lab/VQA PythonEvaluationTools/vqaEvaluation/vqaEval.py (commit a013f0043c1e,
    ASCII contraction table, 21-character punct list), and
  * the LAVIS-derived VQAEval vendored in Emu (Emu1/mm_eval/datasets/vqa_tools/vqa_eval.py),
as specified in shared/spec/metrics.md 2.1-2.3: same data structures (answer dicts with
answer_id, whole-record comparison for "other answers"), same per-question operations, same
aggregation. Progress printing is left out. Usage: python3 vqa_reference.py QUESTIONS.json
CONTRACTIONS.json; prints one JSON line with the timings and the unrounded overall accuracies.
"""
import json
import re
import sys
import time


class Normaliser:
    def __init__(self, contractions):
        self.contractions = contractions
        self.manualMap = {'none': '0', 'zero': '0', 'one': '1', 'two': '2', 'three': '3', 'four': '4',
                          'five': '5', 'six': '6', 'seven': '7', 'eight': '8', 'nine': '9', 'ten': '10'}
        self.articles = ['a', 'an', 'the']
        self.periodStrip = re.compile(r"(?!<=\d)(\.)(?!\d)")
        self.commaStrip = re.compile(r"(\d)(\,)(\d)")
        self.punct = [';', r"/", '[', ']', '"', '{', '}', '(', ')', '=', '+', '\\', '_', '-', '>', '<', '@', '`',
                      ',', '?', '!']

    def processPunctuation(self, inText):
        outText = inText
        for p in self.punct:
            if (p + ' ' in inText or ' ' + p in inText) or (re.search(self.commaStrip, inText) != None):
                outText = outText.replace(p, '')
            else:
                outText = outText.replace(p, ' ')
        outText = self.periodStrip.sub("", outText, re.UNICODE)
        return outText

    def processDigitArticle(self, inText):
        outText = []
        tempText = inText.lower().split()
        for word in tempText:
            word = self.manualMap.setdefault(word, word)
            if word not in self.articles:
                outText.append(word)
            else:
                pass
        for wordId, word in enumerate(outText):
            if word in self.contractions:
                outText[wordId] = self.contractions[word]
        outText = ' '.join(outText)
        return outText


def official(n, gts, res, quesIds):
    accQA = []
    accQuesType = {}
    accAnsType = {}
    for quesId in quesIds:
        for ansDic in gts[quesId]['answers']:
            ansDic['answer'] = ansDic['answer'].replace('\n', ' ')
            ansDic['answer'] = ansDic['answer'].replace('\t', ' ')
            ansDic['answer'] = ansDic['answer'].strip()
        resAns = res[quesId]['answer']
        resAns = resAns.replace('\n', ' ')
        resAns = resAns.replace('\t', ' ')
        resAns = resAns.strip()
        gtAcc = []
        gtAnswers = [ans['answer'] for ans in gts[quesId]['answers']]
        if len(set(gtAnswers)) > 1:
            for ansDic in gts[quesId]['answers']:
                ansDic['answer'] = n.processPunctuation(ansDic['answer'])
                ansDic['answer'] = n.processDigitArticle(ansDic['answer'])
            resAns = n.processPunctuation(resAns)
            resAns = n.processDigitArticle(resAns)
        for gtAnsDatum in gts[quesId]['answers']:
            otherGTAns = [item for item in gts[quesId]['answers'] if item != gtAnsDatum]
            matchingAns = [item for item in otherGTAns if item['answer'] == resAns]
            acc = min(1, float(len(matchingAns)) / 3)
            gtAcc.append(acc)
        quesType = gts[quesId]['question_type']
        ansType = gts[quesId]['answer_type']
        avgGTAcc = float(sum(gtAcc)) / len(gtAcc)
        accQA.append(avgGTAcc)
        accQuesType.setdefault(quesType, []).append(avgGTAcc)
        accAnsType.setdefault(ansType, []).append(avgGTAcc)
    return aggregate(accQA, accQuesType, accAnsType)


def emu(n, gts, res, quesIds):
    accQA = []
    accQuesType = {}
    accAnsType = {}
    for quesId in quesIds:
        resAns = res[quesId]['answer']
        resAns = resAns.replace('\n', ' ')
        resAns = resAns.replace('\t', ' ')
        resAns = resAns.strip()
        resAns = n.processPunctuation(resAns)
        resAns = n.processDigitArticle(resAns)
        gtAcc = []
        gtAnswers = [ans['answer'] for ans in gts[quesId]['answers']]
        if len(set(gtAnswers)) > 1:
            for ansDic in gts[quesId]['answers']:
                ansDic['answer'] = n.processPunctuation(ansDic['answer'])
        for gtAnsDatum in gts[quesId]['answers']:
            otherGTAns = [item for item in gts[quesId]['answers'] if item != gtAnsDatum]
            matchingAns = [item for item in otherGTAns if item['answer'] == resAns]
            acc = min(1, float(len(matchingAns)) / 3)
            gtAcc.append(acc)
        quesType = gts[quesId]['question_type']
        ansType = gts[quesId]['answer_type']
        avgGTAcc = float(sum(gtAcc)) / len(gtAcc)
        accQA.append(avgGTAcc)
        accQuesType.setdefault(quesType, []).append(avgGTAcc)
        accAnsType.setdefault(ansType, []).append(avgGTAcc)
    return aggregate(accQA, accQuesType, accAnsType)


def aggregate(accQA, accQuesType, accAnsType):
    return {
        'overall': 100 * float(sum(accQA)) / len(accQA),
        'perQuestionType': {q: 100 * float(sum(v)) / len(v) for q, v in accQuesType.items()},
        'perAnswerType': {a: 100 * float(sum(v)) / len(v) for a, v in accAnsType.items()},
    }


def load(path):
    data = json.load(open(path))['questions']
    gts, res = {}, {}
    for q in data:
        qid = q['question_id']
        gts[qid] = {'question_type': q['question_type'], 'answer_type': q['answer_type'],
                    'answers': [{'answer': a, 'answer_confidence': 'yes', 'answer_id': i + 1}
                                for i, a in enumerate(q['answers'])]}
        res[qid] = {'answer': q['prediction'], 'question_id': qid}
    return gts, res, [q['question_id'] for q in data]


def main():
    path, contractions = sys.argv[1], json.load(open(sys.argv[2]))
    out = {}
    for name, fn in (('official', official), ('emu', emu)):
        gts, res, quesIds = load(path)  # fresh copy: the loops normalise answers in place
        t = time.perf_counter()
        acc = fn(Normaliser(dict(contractions)), gts, res, quesIds)
        out[name] = {'seconds': time.perf_counter() - t, 'overall': acc['overall']}
    print(json.dumps(out))


if __name__ == '__main__':
    main()
