# Makes tests/data/hf_extra-style dumps with HF tokenizers (run from the repository root; OUT=dir): the fixture
# tokenizers with other components, 612 random strings each, and decodes of random ids. The checked-in copies keep
# 90 cases and 40 decodes per tokenizer. Compact on purpose (it was sent to a machine through a short command line).
import json,os,random as R
from tokenizers import Tokenizer as K,AddedToken as A,pre_tokenizers as P,normalizers as N,decoders as D,processors as Q,Regex as X
r=R.Random(7)
L=[(97,122),(65,90),(48,57),(32,32),(9,13),(33,47),(58,64),(91,96),(123,126),(128,255),(256,383),(768,879),(880,1279),(1424,1791),(2304,2431),(8192,8303),(12288,12543),(19968,20096),(44032,44100),(65280,65374),(128512,128591),(127995,127999),(39,39),(39,39),(115,115),(108,108)]
S=["<|endoftext|>","<|im_start|>","<s>","</s>","<unk>","<|eot_id|>","hello","xyz","[MASK]","Hello"]
W=[]
for i in range(600):
 p=[]
 for _ in range(r.choice([1,2,3,5,8,20,60])):
  p.append(r.choice(S) if r.random()<.08 else "".join(chr(r.randint(*c)) for c in [r.choice(L)]*r.randint(1,6)))
  if r.random()<.4:p.append(" ")
 W.append("".join(p))
W+=["","hello world hello"," hello","helloworld","a hello b","hello."," xyz ","  xyz  end","[MASK][MASK] x","a  <s>  b","x"*3000,"ab "*2000]
T="tests/data/hf/tokenizers/%s/tokenizer.json"
B=lambda n:K.from_file(T%n)
def c(n,**k):
 t=B(n)
 for a,v in k.items():setattr(t,a,v)
 return t
G="gpt2_bpe";M="llama2_spm_bpe";BL=lambda u=False:P.ByteLevel(add_prefix_space=u,use_regex=False)
C={n:(lambda n=n:B(n)) for n in [G,"llama3_bpe","qwen2_bpe",M]}
C["gp"]=lambda:c(G,pre_tokenizer=P.ByteLevel(add_prefix_space=True))
C["mf"]=lambda:c(M,normalizer=None,pre_tokenizer=P.Metaspace(prepend_scheme="first"),decoder=D.Sequence([D.ByteFallback(),D.Metaspace(prepend_scheme="first")]))
C["ns"]=lambda:c(G,normalizer=N.Sequence([N.NFKD(),N.StripAccents(),N.Lowercase(),N.Strip(),N.Replace(X("[0-9]{2}"),"#")]),pre_tokenizer=P.Sequence([P.Whitespace(),P.Digits(individual_digits=True),P.Punctuation(),BL()]))
for b in ["removed","isolated","merged_with_previous","merged_with_next","contiguous"]:
 for v in [0,1]:C["s_%s_%d"%(b,v)]=lambda b=b,v=v:c(G,pre_tokenizer=P.Sequence([P.Split(X(r"\s+|[0-9]"),behavior=b,invert=bool(v)),P.Split(".",behavior="isolated"),BL()]))
def af():
 t=B("llama3_bpe");t.add_tokens([A("hello",single_word=True,normalized=True),A("xyz",lstrip=True,rstrip=True,normalized=False)]);t.add_special_tokens([A("[MASK]",lstrip=True,special=True,normalized=False)]);return t
C["af"]=af
def ql():
 t=c("qwen2_bpe",normalizer=N.Sequence([N.NFC(),N.Lowercase()]));t.add_tokens([A("Hello",normalized=True)]);return t
C["ql"]=ql
for n,f in C.items():
 try:
  t=f();d=os.environ["OUT"]+"/"+n;os.makedirs(d);t.save(d+"/tokenizer.json");t=K.from_file(d+"/tokenizer.json");V=t.get_vocab_size(True);E=[]
  for s in W:
   e=t.encode(s,add_special_tokens=False);E.append(dict(text=s,ids=e.ids,tokens=e.tokens,ids_with_special=t.encode(s).ids,decoded=t.decode(e.ids,skip_special_tokens=False)))
  Z=[[r.randrange(V) for _ in range(r.randint(1,12))] for _ in range(300)]
  json.dump(dict(vocab_size=V,cases=E,decodes=[dict(ids=z,text=t.decode(z,skip_special_tokens=False),text_skip=t.decode(z,skip_special_tokens=True)) for z in Z]),open(d+"/encodings.json","w"),ensure_ascii=False);print("ok",n)
 except Exception as e:print("FAILED",n,repr(e))
